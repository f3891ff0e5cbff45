"""SemantiCodec: 16 kHz audio <-> semantic + acoustic tokens (Liu et al., 2024).

``import codec`` stays cheap: heavy modules load on first attribute access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from codec.config import SemantiCodecConfig

__all__ = ["SemantiCodecConfig", "SemantiCodec", "EncodeOutput", "DecodeOutput", "DecodeSettings", "fast_paths"]

# The codec's public face: the names above and these modules (packages through their exports).
# The rest of codec is its inside; tests/test_architecture.py holds semantilm to this list.
PUBLIC_MODULES = (
    "codec.audio",  # reading, checking and resampling audio
    "codec.checkpoints",  # loading a codec by name, folder or official checkpoint
    "codec.compress",  # files of audio <-> files of tokens
    "codec.config",  # variants and their sizes
    "codec.data",  # corpora and the synthetic sound set
    "codec.decode_stream",  # decoding tokens that are still being written
    "codec.eval",  # codec metrics and eval-codec
    "codec.fast",  # the fast-path switch and the packed linear layers the LM shares
    "codec.sampling",  # decode settings and samplers
    "codec.token_file",  # the token file format
    "codec.training",  # the codec recipe and export
)

if TYPE_CHECKING:  # pragma: no cover
    from codec.fast import fast_paths
    from codec.model import SemantiCodec
    from codec.outputs import DecodeOutput, EncodeOutput
    from codec.sampling import DecodeSettings


def __getattr__(name: str) -> Any:
    if name == "SemantiCodec":
        from codec.model import SemantiCodec

        return SemantiCodec
    if name in ("EncodeOutput", "DecodeOutput"):
        from codec import outputs

        return getattr(outputs, name)
    if name == "DecodeSettings":
        from codec.sampling import DecodeSettings

        return DecodeSettings
    if name == "fast_paths":  # with codec.fast_paths(False): the plain modules (codec/fast/)
        from codec.fast import fast_paths

        return fast_paths
    raise AttributeError(f"module 'codec' has no attribute {name!r}")
