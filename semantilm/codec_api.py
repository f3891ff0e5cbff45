"""The small contract through which the LM side uses an audio codec.

``semantilm`` never reaches into codec internals: it needs the sample rate, the token frame
rate, the two vocabulary sizes, a variant name (recorded beside every LM checkpoint), and the
two calls ``encode`` (audio -> tokens) and ``decode`` (tokens -> audio). ``codec.SemantiCodec``
provides exactly these names; any other codec with two token streams per frame can be
plugged in the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from codec.outputs import DecodeOutput, EncodeOutput

__all__ = ["AudioCodec", "check_codec", "codec_description"]

_REQUIRED = ("sample_rate", "frame_rate", "semantic_vocab_size", "acoustic_vocab_size", "variant", "encode", "decode")


@runtime_checkable
class AudioCodec(Protocol):
    """What ``semantilm`` needs from a codec.

    sample_rate:          Hz of the waveforms ``encode`` takes and ``decode`` returns.
    frame_rate:           token frames per second (one frame = one semantic + one acoustic id).
    semantic_vocab_size:  real range of semantic ids: ``0 <= id < semantic_vocab_size``.
    acoustic_vocab_size:  real range of acoustic ids.
    variant:              a name that identifies the trained codec (saved with the LM layout).
    """

    sample_rate: int
    frame_rate: float
    semantic_vocab_size: int
    acoustic_vocab_size: int
    variant: str

    def encode(
        self, audio: list[torch.Tensor] | torch.Tensor, sample_rate: int, lengths: torch.Tensor | None = None
    ) -> EncodeOutput:
        """Audio -> tokens.

        audio:   a list of FloatTensor[N_b] clips, or FloatTensor[B, N] (zero-padded; then
                 ``lengths`` LongTensor[B] gives the valid samples), or FloatTensor[N].
        returns: ``EncodeOutput`` with tokens LongTensor[B, T, 2] (``[..., 0]`` semantic,
                 ``[..., 1]`` acoustic) and lengths LongTensor[B] in frames.
        """
        ...

    def decode(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None, **kwargs: Any) -> DecodeOutput:
        """Tokens LongTensor[B, T, 2] (+ lengths LongTensor[B] in frames) -> ``DecodeOutput``
        with audio FloatTensor[B, N], lengths LongTensor[B] in samples and the sample rate."""
        ...


def check_codec(codec: Any, argument: str = "codec") -> AudioCodec:
    """Raise a ``TypeError`` naming what is missing when ``codec`` does not follow the contract."""
    missing = [name for name in _REQUIRED if not hasattr(codec, name)]
    if missing:
        raise TypeError(
            f"{argument}={type(codec).__name__} does not implement the AudioCodec contract: missing {missing}; "
            f"it needs {list(_REQUIRED)} (see semantilm.codec_api.AudioCodec)."
        )
    for name in ("encode", "decode"):
        if not callable(getattr(codec, name)):
            raise TypeError(f"{argument}.{name} must be callable, got {type(getattr(codec, name)).__name__}.")
    return codec


def codec_description(codec: AudioCodec) -> dict[str, Any]:
    """The facts about ``codec`` that a token layout records (JSON-serialisable)."""
    info: dict[str, Any] = {
        "variant": str(codec.variant),
        "sample_rate": int(codec.sample_rate),
        "frame_rate": float(codec.frame_rate),
        "semantic_vocab_size": int(codec.semantic_vocab_size),
        "acoustic_vocab_size": int(codec.acoustic_vocab_size),
    }
    config = getattr(codec, "config", None)
    if config is not None and hasattr(config, "to_dict"):
        info["config"] = config.to_dict()
    return info
