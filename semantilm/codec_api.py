"""The small contract through which the LM side uses an audio codec.

``semantilm`` never reaches into codec internals: it needs the sample rate, the token frame
rate, the two vocabulary sizes, a variant name (recorded beside every LM checkpoint), and the
two calls ``encode`` (audio -> tokens) and ``decode`` (tokens -> audio). ``codec.SemantiCodec``
provides exactly these names; any other codec with two token streams per frame can be
plugged in the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from codec.config import OFFICIAL_REPO

DECODER_DTYPES = ("float32", "bfloat16", "float16")

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from codec import DecodeOutput, EncodeOutput

__all__ = ["AudioCodec", "check_codec", "codec_description", "load_codec"]


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
        with audio FloatTensor[B, N], lengths LongTensor[B] in samples and the sample rate.
        ``codec.SemantiCodec`` takes ``settings=codec.DecodeSettings(...)`` and ``generator=`` here (the
        same tokens and generator give the samples of its decode stream and of ``semantilm decode --seed``)."""
        ...


def check_codec(
    codec: Any, argument: str = "codec", methods: tuple[str, ...] = ("encode", "decode")
) -> AudioCodec:
    """Raise a ``TypeError`` naming what is missing when ``codec`` does not follow the contract.

    methods: the calls the caller needs; tokenising needs only ``("encode",)`` and a layout
             only the attributes ``()``, so that an encode-only codec can be used for them.
    """
    needed = [n for n in _REQUIRED if n not in ("encode", "decode")] + list(methods)
    missing = [name for name in needed if not hasattr(codec, name)]
    if missing:
        raise TypeError(
            f"{argument}={type(codec).__name__} does not implement the AudioCodec contract: missing {missing}; "
            f"it needs {needed} here (see semantilm.codec_api.AudioCodec)."
        )
    for name in methods:
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


def load_codec(
    name: str = OFFICIAL_REPO,
    token_rate: int | None = None,
    vocab: int | None = None,
    device: str = "cpu",
    cache_dir: str | None = None,
    decoder: bool = True,
    decoder_dtype: str | None = None,
) -> Any:
    """A ``codec.SemantiCodec`` by name (see ``SemantiCodec.from_pretrained``), moved to ``device``.

    name: a hub repository or local folder with the official layout, a folder written by
          ``SemantiCodec.save_pretrained``, ``"tiny"`` (the small trained codec shipped in the
          package, offline) or ``"tiny-random"`` (tiny configuration, random weights from seed 0).
    token_rate / vocab: the official variant (None: 100 tokens/s, 16384). ``tiny`` and ``save_pretrained``
          folders take only their own values or None (another is a ``ValueError`` naming the codec and
          both rates); ``tiny-random`` takes a token rate, its vocabulary is always 64.
    decoder: False loads an encode-only codec (skips the decoder weights); True refuses a codec
             saved without its decoder (``ValueError``).
    decoder_dtype: "float32" (default), "bfloat16" or "float16": the precision the diffusion decoder's
             UNet (and distilled student) and VAE run in (the UNet's GroupNorms stay fp32, as the official
             code keeps them; the vocoder stays fp32: ``DiffusionDecoder.set_dtype``). Half precision is
             for GPUs, and bfloat16 also for CPUs with bf16 instructions (AVX512-BF16, AMX), where the VAE
             runs about 2x faster; the waveform moves by about 1 % of its norm.
    """
    from codec import SemantiCodec

    if decoder_dtype not in (None, *DECODER_DTYPES):  # refused before the weights load
        raise ValueError(f"decoder_dtype must be one of {DECODER_DTYPES}, got {decoder_dtype!r}.")
    model = SemantiCodec.from_pretrained(
        name, token_rate=token_rate, semantic_vocab_size=vocab, cache_dir=cache_dir, load_decoder=decoder
    )
    if decoder and model.no_decoder_reason:  # refused before any work, not at the first decode
        raise ValueError(f"codec {name!r} cannot decode: {model.no_decoder_reason}.")
    model = model.to(device)
    if decoder and decoder_dtype not in (None, "float32"):
        import torch

        model.decoder.set_dtype(getattr(torch, decoder_dtype))
    return model
