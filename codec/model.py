"""SemantiCodec: composes the front end, semantic encoder, acoustic encoder and diffusion decoder.

Encoding (:mod:`codec.encoding`) follows the official computation per clip, but every 10.24 s
segment of every clip of a call goes through AudioMAE and the LSTM together, in batches of
``batch_size`` segments. Decoding (:class:`codec.decoder.DiffusionDecoder`) likewise samples
every 10.24 s window of every clip of a call together, in batches of ``batch_size`` windows.
This module holds the class: its public contract, construction and checkpoint loading.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from codec.acoustic import AcousticEncoder
from codec.audio import as_waveform_list, check_sample_rate_arg, load_audio, prepare_clips
from codec.audiomae import AudioMAEEncoder
from codec.checkpoints import (
    EMBEDDED_CODECS,
    OFFICIAL_REPO,
    check_codec_arguments,
    check_codec_folder,
    embedded_codec_folder,
    is_native_folder,
    load_centroids,
    load_native,
    load_torch_state_dict,
    resolve_official_files,
)
from codec.config import TINY_RANDOM, SemantiCodecConfig
from codec.convert.encoder import convert_official_encoder
from codec.convert.state_dict import check_state_dict
from codec.encoding import (
    SegmentEncoding,
    encode_clips,
    encode_segments,
    fbank_segments,
    group_clips,
    num_segments,
    pad_tokens,
    valid_token_frames,
)
from codec.outputs import DecodeOutput, EncodeOutput
from codec.sampling import DecodeSettings, refuse_loose_settings
from codec.semantic import SemanticQuantizer
from codec.student import attach_saved_student, save_with_student
from plumbing.io import path_list
from plumbing.progress import progress_bar

logger = logging.getLogger(__name__)

class SemantiCodec(nn.Module):
    """16 kHz audio <-> (semantic, acoustic) token frames.

    Build with ``from_pretrained`` (official hub files or our own folders), ``from_official``
    (official checkpoint contents in memory) or ``SemantiCodec(config)`` (random weights;
    ``with_decoder=True`` adds a randomly initialised decoder, otherwise the codec only encodes).
    Move and cast with the usual ``.to(device, dtype)``.
    """

    def __init__(self, config: SemantiCodecConfig, *, with_decoder: bool = False):
        super().__init__()
        self.config = config
        self.audiomae = AudioMAEEncoder(config)
        self.semantic = SemanticQuantizer(config)
        self.acoustic = AcousticEncoder(config)
        self.decoder = None
        self._no_decoder: str | None = None  # why a loaded codec has no decoder (set by from_pretrained)
        if with_decoder:
            from codec.decoder import DiffusionDecoder

            self.decoder = DiffusionDecoder(config)
        self.eval()

    # ----- the codec contract used by semantilm ------------------------------------------
    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def frame_rate(self) -> float:
        """Token frames per second (one semantic + one acoustic id each)."""
        return self.config.frame_rate

    @property
    def semantic_vocab_size(self) -> int:
        """Range of semantic ids: the rows of the loaded centroid table."""
        return self.semantic.vocab_size

    @property
    def acoustic_vocab_size(self) -> int:
        return self.acoustic.vocab_size

    @property
    def variant(self) -> str:
        return self.config.name

    @property
    def no_decoder_reason(self) -> str | None:
        """None when the codec can decode; else why not (built, loaded or saved encode-only)."""
        if self.decoder is not None:
            return None
        return self._no_decoder or "it was built encode-only (load_decoder=False or with_decoder=False)"

    @property
    def device(self) -> torch.device:
        return self.semantic.centroids.device

    @property
    def dtype(self) -> torch.dtype:
        return self.acoustic.proj.weight.dtype

    # ----- encoding ----------------------------------------------------------------------
    @torch.inference_mode()
    def encode(
        self,
        audio: torch.Tensor | np.ndarray | Sequence[torch.Tensor | np.ndarray],
        sample_rate: int | Sequence[int] = 16000,
        lengths: torch.Tensor | Sequence[int] | None = None,
        *,
        batch_size: int = 8,
        progress: bool | None = None,
        mono: str = "first",
        names: Sequence[str] | None = None,
    ) -> EncodeOutput:
        """Encode clips of any lengths to token frames.

        audio: one clip [N], a padded batch [B, N] (with ``lengths``), a list of clips, or one
               multi-channel clip [N, C]; float waveforms in [-1, 1] at ``sample_rate`` (one rate,
               or one per clip; resampled to 16 kHz here). A [C, N] tensor with 2 <= C <= 8 is
               refused as ambiguous: pass ``[audio]`` for one C-channel clip (see ``codec.audio``).
        mono: multi-channel clips keep the "first" channel (official) or the "mean".
        names: one name per clip for errors and warnings (default ``audio[i]``).
        batch_size: 10.24 s segments per AudioMAE/LSTM forward (bounds memory).
        progress: a bar over the 10.24 s segments; None shows it only when stderr is a terminal
            and there is more than one batch of them.
        Returns EncodeOutput(tokens LongTensor[B, T, 2], lengths LongTensor[B]); T_b is the
        official token count ceil(8 * d / 0.16 / K) for a clip of d seconds rounded up to 0.16 s.
        """
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}.")
        check_sample_rate_arg(sample_rate, audio, lengths)
        clips = as_waveform_list(audio, lengths, mono=mono)
        prepared = prepare_clips(clips, sample_rate, self.config.sample_rate, self.config.win_length, names)
        per_clip = [None] * len(prepared)
        segments = sum(num_segments(clip.numel(), self.config) for clip in prepared)
        if progress is None and segments <= batch_size:  # one forward: no bar by default
            progress = False
        with progress_bar(total=segments, desc="encode", unit="segment", progress=progress) as bar:
            for group in group_clips(prepared, batch_size, self.config):
                for index, tokens in zip(group, encode_clips(self, [prepared[i] for i in group], batch_size, bar)):
                    per_clip[index] = tokens
        return pad_tokens(per_clip)

    @torch.inference_mode()
    def encode_file(
        self,
        paths: str | Path | Sequence[str | Path],
        *,
        mono: str = "first",
        batch_size: int = 8,
        progress: bool | None = None,
    ) -> EncodeOutput:
        """Read audio files (one path, ``str`` or ``os.PathLike``, or a list) and encode them in batches;
        ``mono="first"`` keeps the first channel as the official code does, ``"mean"`` averages."""
        paths = path_list(paths, "paths")
        loaded = [load_audio(path, mono=mono) for path in paths]
        return self.encode([w for w, _ in loaded], [r for _, r in loaded], batch_size=batch_size, progress=progress,
                           names=[f"audio file {str(p)!r}" for p in paths])

    def fbank_segments(self, clips: list[torch.Tensor]) -> tuple[torch.Tensor, list[int]]:
        """16 kHz clips -> (normalised fbank of all segments [sum S_b, 1024, 128], [S_b]).

        Each clip is padded as the official front end does and gets its own mean removed.
        """
        return fbank_segments(clips, self.config, self.device)

    @torch.inference_mode()
    def encode_fbank(
        self, fbank: torch.Tensor, *, batch_size: int = 8, return_intermediates: bool = False, bar: Any | None = None
    ) -> SegmentEncoding:
        """Encode normalised fbank segments [N, 1024, 128] (batches of ``batch_size``); ``bar``, a
        progress bar (``plumbing.progress``), advances by the segments of each batch."""
        cfg = self.config
        if fbank.dim() != 3 or fbank.shape[1:] != (cfg.segment_frames, cfg.n_mels):
            raise ValueError(
                f"fbank must be [segments, {cfg.segment_frames}, {cfg.n_mels}], got {tuple(fbank.shape)}."
            )
        parts = []
        for i in range(0, fbank.shape[0], batch_size):
            parts.append(encode_segments(self, fbank[i : i + batch_size].to(self.device), return_intermediates))
            if bar is not None:
                bar.update(min(batch_size, fbank.shape[0] - i))
        return SegmentEncoding.concatenate(parts)

    def valid_token_frames(self, fbank: torch.Tensor) -> torch.Tensor:
        """Token frames before each segment's padding cutoff, as the official mask computes it.

        Frames whose std over mel bins is <= 1e-7 are empty; the cutoff is after the last
        non-empty frame; token frames from ceil(P * cutoff / 1024) on are padding.
        """
        return valid_token_frames(fbank, self.config)

    # ----- decoding ----------------------------------------------------------------------
    @torch.inference_mode()
    def decode(
        self,
        tokens: torch.Tensor | EncodeOutput,
        lengths: torch.Tensor | Sequence[int] | None = None,
        settings: DecodeSettings | None = None,
        *,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
        batch_size: int = 8,
        progress: bool | None = None,
        **removed: Any,
    ) -> DecodeOutput:
        """Decode token frames to 16 kHz waveforms.

        tokens: LongTensor[B, T, 2] (``[..., 0]`` semantic, ``[..., 1]`` acoustic ids) or an
            EncodeOutput (its lengths are used). lengths: valid frames per clip (default T).
        settings: :class:`codec.sampling.DecodeSettings` (sampler, steps, cfg_scale, eta), default
            ``DecodeSettings()``: the official DDIM (stochastic with ``eta``, official eta = 1), 50 steps,
            the variant's ``config.cfg_scale`` (official 2.0). The other samplers of
            ``codec.sampling.SAMPLERS`` are deterministic, good with 10-25 steps.
        generator: seeds the sampler's Gaussian draws, window by window in the one noise order of
            :mod:`codec.decode_stream` (window index, then clip): results do not depend on ``batch_size``,
            and a stream of the same clips (``open_decode_stream``) draws the same. ``noise``: all draws
            instead, [n_windows, steps + 1, 8, 256, 16] for DDIM (1 draw for the deterministic samplers),
            windows in that order.
        batch_size: 10.24 s windows per UNet call (the UNet sees twice as many with CFG).
        progress: bars over the UNet steps and the VAE + vocoder batches; None shows them only
            when stderr is a terminal.
        Returns DecodeOutput(audio FloatTensor[B, N], lengths LongTensor[B], sample_rate).
        """
        refuse_loose_settings(removed, "SemantiCodec.decode")
        if self.decoder is None and self._no_decoder:
            raise RuntimeError(f"this codec has no decoder: {self._no_decoder}.")
        if self.decoder is None:
            raise RuntimeError(
                "this codec has no decoder (built encode-only); load it with from_pretrained(..., "
                "load_decoder=True), pass decoder_state_dict to from_official, or use SemantiCodec(config, "
                "with_decoder=True)."
            )
        if isinstance(tokens, EncodeOutput):
            if lengths is None:
                lengths = tokens.lengths
            tokens = tokens.tokens
        return self.decoder.decode(
            tokens, self.acoustic.codebook, self.semantic.centroids, lengths, settings,
            generator=generator, noise=noise, batch_size=batch_size, progress=progress,
        )

    # ----- construction and checkpoints ---------------------------------------------------
    @classmethod
    def from_official(
        cls,
        encoder_state_dict: dict[str, torch.Tensor],
        decoder_state_dict: dict[str, torch.Tensor] | None,
        semantic_centroids: np.ndarray | torch.Tensor,
        *,
        token_rate: int = 100,
        semantic_vocab_size: int = 16384,
        config: SemantiCodecConfig | None = None,
    ) -> SemantiCodec:
        """Build from the official checkpoint contents (``encoder.ckpt``, ``decoder.ckpt``,
        centroid ``.npy``). The semantic vocabulary is the centroid table's row count.

        ``config`` replaces the official preset for checkpoints in the official format but
        of other sizes (models trained with the official code, tiny test models).
        Every official key is consumed (or is on the explicit unused list) and every
        parameter is set; otherwise CheckpointMismatchError lists what differs.
        """
        centroids = torch.as_tensor(np.asarray(semantic_centroids))
        if centroids.dim() != 2:
            raise ValueError(f"semantic_centroids must be a 2-D table [V, D], got shape {tuple(centroids.shape)}.")
        if config is None:
            config = SemantiCodecConfig.official(token_rate, semantic_vocab_size)
        config = dataclasses.replace(config, semantic_codebook_size=int(centroids.shape[0]))
        state = convert_official_encoder(encoder_state_dict, centroids, config)
        what = "official encoder checkpoint"
        if decoder_state_dict is not None:
            from codec.convert.decoder import convert_official_decoder

            state.update(convert_official_decoder(decoder_state_dict, config, prefix="decoder."))
            what = "official encoder and decoder checkpoints"
        return cls._from_state_dict(config, state, what=what)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path = OFFICIAL_REPO,
        *,
        token_rate: int | None = None,
        semantic_vocab_size: int | None = None,
        cache_dir: str | Path | None = None,
        local_files_only: bool = False,
        load_decoder: bool = True,
    ) -> SemantiCodec:
        """Load a codec.

        name_or_path: ``"tiny"`` (the small codec shipped in the package, trained by
            ``recipes/codec/train_tiny_codec.sh``; offline); ``"tiny-random"`` (see :meth:`tiny_random`);
            a folder written by ``save_pretrained``;
            a local folder with the official layout; or a hub repository with the official layout (default
            ``haoheliu/SemantiCodec``), downloaded once into the Hugging Face cache.
        token_rate / semantic_vocab_size: which official variant (None: 100, 16384); ``tiny`` and ``save_pretrained``
            folders refuse values other than their own (``ValueError``); ``tiny-random`` takes only a rate.
        load_decoder: False builds an encode-only codec (skips the decoder download). A folder saved
            from an encode-only codec loads encode-only either way (a warning; ``decode`` says why).
        A name meant as a local path (see ``codec.checkpoints.looks_like_a_path``) that does not exist,
        or a ``save_pretrained`` folder lacking one of its files, is a ``FileNotFoundError``.
        """
        name_or_path = check_codec_arguments(name_or_path, token_rate, semantic_vocab_size)
        if name_or_path == TINY_RANDOM:
            return cls.tiny_random(token_rate or 100, with_decoder=load_decoder)
        if isinstance(name_or_path, str) and name_or_path in EMBEDDED_CODECS:
            name_or_path = embedded_codec_folder(name_or_path)
        check_codec_folder(name_or_path)  # a missing or incomplete local folder never becomes a hub lookup
        if is_native_folder(name_or_path):
            config, state = load_native(name_or_path)
            saved_decoder = any(k.startswith("decoder.") for k in state)
            if not load_decoder:
                state = {k: v for k, v in state.items() if not k.startswith("decoder.")}
            model = cls._from_state_dict(config, state, what=f"codec weights in {str(name_or_path)!r}")
            attach_saved_student(model, name_or_path)
            if not saved_decoder:
                model._no_decoder = (f"{str(name_or_path)!r} was saved from an encode-only codec (it has no decoder "
                                     "weights); decode with the codec it came from, or save one loaded with its decoder")
                if load_decoder:
                    logger.warning("codec %s can encode but not decode: %s.", name_or_path, model._no_decoder)
            return model
        files = resolve_official_files(
            name_or_path,
            token_rate=token_rate or 100,
            semantic_vocab_size=semantic_vocab_size or 16384,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            with_decoder=load_decoder,
        )
        encoder = load_torch_state_dict(files.encoder)
        decoder = load_torch_state_dict(files.decoder) if files.decoder is not None else None
        return cls.from_official(
            encoder,
            decoder,
            load_centroids(files.centroids),
            token_rate=token_rate or 100,
            semantic_vocab_size=semantic_vocab_size or 16384,
        )

    @classmethod
    def tiny_random(
        cls, token_rate: int = 100, *, seed: int = 0, with_decoder: bool = True, **sizes: Any
    ) -> SemantiCodec:
        """The tiny configuration (``SemantiCodecConfig.tiny(token_rate, **sizes)``) with random
        weights drawn from ``seed``: the same codec in every process and run, without touching the
        global random state. It tries the pipeline offline; its tokens carry no meaning."""
        config = SemantiCodecConfig.tiny(token_rate, **sizes)
        state = torch.random.get_rng_state()
        try:
            torch.manual_seed(seed)
            return cls(config, with_decoder=with_decoder)
        finally:
            torch.random.set_rng_state(state)

    def save_pretrained(self, folder: str | Path) -> None:
        """Write ``config.json``, ``model.safetensors`` and the distilled decoder's ``student.safetensors`` if any;
        an encode-only codec is saved without decoder weights and reloads knowing it cannot decode."""
        save_with_student(folder, self.config, self.state_dict(), self.decoder)

    @classmethod
    def _from_state_dict(cls, config: SemantiCodecConfig, state: dict[str, torch.Tensor], what: str) -> SemantiCodec:
        # Build on the meta device: the LSTM alone has up to 1.5 B parameters, and initialising
        # them randomly only to overwrite them would cost seconds and a second copy in memory.
        with torch.device("meta"):
            model = cls(config, with_decoder=any(k.startswith("decoder.") for k in state))
        check_state_dict(model.state_dict(), state, what,
                         hint="Check that token_rate / semantic_vocab_size match the checkpoint.")
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True, assign=True)
        model.audiomae.requires_grad_(False)
        return model.eval()

