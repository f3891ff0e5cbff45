"""SemantiCodec: 16 kHz audio <-> semantic + acoustic tokens (Liu et al., 2024).

``import codec`` stays cheap: heavy modules load on first attribute access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import SemantiCodecConfig

__all__ = ["SemantiCodecConfig", "SemantiCodec", "EncodeOutput", "DecodeOutput"]

if TYPE_CHECKING:  # pragma: no cover
    from .model import SemantiCodec
    from .outputs import DecodeOutput, EncodeOutput


def __getattr__(name: str) -> Any:
    if name == "SemantiCodec":
        from .model import SemantiCodec

        return SemantiCodec
    if name in ("EncodeOutput", "DecodeOutput"):
        from . import outputs

        return getattr(outputs, name)
    raise AttributeError(f"module 'codec' has no attribute {name!r}")
