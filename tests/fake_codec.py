"""A deterministic stand-in for ``codec.SemantiCodec`` with the same contract and trivially cheap
signal processing, so that code around a codec is tested in milliseconds."""

from __future__ import annotations

import math

import torch

from codec.outputs import DecodeOutput, EncodeOutput


class FakeCodec:
    """Test double of the codec (NOT SemantiCodec): framewise energy / zero-crossing tokens.

    encode: 16 kHz audio is cut into frames of ``hop`` samples (the last one zero-padded);
            semantic id = log-energy bucket, acoustic id = zero-crossing-rate bucket.
    decode: every frame becomes a sine burst whose pitch follows the semantic id and whose
            amplitude follows the acoustic id; ids out of range raise ``ValueError`` like the
            real decoder must.
    """

    variant = "fake-test-double"

    def __init__(self, semantic_vocab_size: int = 16, acoustic_vocab_size: int = 8, hop: int = 320):
        self.sample_rate = 16000
        self.hop = hop
        self.frame_rate = self.sample_rate / hop
        self.semantic_vocab_size = semantic_vocab_size
        self.acoustic_vocab_size = acoustic_vocab_size
        self.encode_calls = 0
        self.decode_calls = 0

    def encode(self, audio, sample_rate: int, lengths=None) -> EncodeOutput:
        if sample_rate != self.sample_rate:
            raise ValueError(f"sample_rate={sample_rate} is not supported; FakeCodec takes {self.sample_rate}.")
        if isinstance(audio, torch.Tensor):
            if audio.ndim == 1:
                audio = audio.unsqueeze(0)
            if lengths is None:
                lengths = torch.full((audio.shape[0],), audio.shape[1])
            clips = [a[: int(n)] for a, n in zip(audio, lengths, strict=True)]
        else:
            clips = [torch.as_tensor(a, dtype=torch.float32).reshape(-1) for a in audio]
        if not clips or any(c.numel() == 0 for c in clips):
            raise ValueError("audio must hold at least one non-empty clip.")
        self.encode_calls += 1
        frames = [math.ceil(c.numel() / self.hop) for c in clips]
        tokens = torch.zeros(len(clips), max(frames), 2, dtype=torch.long)
        for b, c in enumerate(clips):
            x = torch.nn.functional.pad(c.float(), (0, frames[b] * self.hop - c.numel())).reshape(frames[b], self.hop)
            energy = torch.log10(x.pow(2).mean(-1) + 1e-6)  # [-6, ~0]
            sem = ((energy + 6) / 6 * self.semantic_vocab_size).floor().clamp(0, self.semantic_vocab_size - 1)
            zcr = (torch.sign(x[:, 1:]) != torch.sign(x[:, :-1])).float().mean(-1)
            aco = (zcr * self.acoustic_vocab_size).floor().clamp(0, self.acoustic_vocab_size - 1)
            tokens[b, : frames[b]] = torch.stack([sem, aco], -1).long()
        return EncodeOutput(tokens=tokens, lengths=torch.tensor(frames))

    def decode(self, tokens: torch.Tensor, lengths=None, **kwargs) -> DecodeOutput:
        if tokens.ndim != 3 or tokens.shape[-1] != 2 or tokens.dtype != torch.long:
            raise ValueError(f"tokens must be LongTensor[B, T, 2], got {tokens.dtype} {tuple(tokens.shape)}.")
        if lengths is None:
            lengths = torch.full((tokens.shape[0],), tokens.shape[1])
        if int(lengths.min()) < 1:
            raise ValueError(f"every clip needs at least one frame, got lengths {lengths.tolist()}.")
        for b, n in enumerate(lengths.tolist()):
            t = tokens[b, :n]
            if int(t[:, 0].min()) < 0 or int(t[:, 0].max()) >= self.semantic_vocab_size:
                raise ValueError(f"semantic ids out of range in clip {b}: {t[:, 0].tolist()}")
            if int(t[:, 1].min()) < 0 or int(t[:, 1].max()) >= self.acoustic_vocab_size:
                raise ValueError(f"acoustic ids out of range in clip {b}: {t[:, 1].tolist()}")
        self.decode_calls += 1
        time = torch.arange(self.hop) / self.sample_rate
        freq = 100.0 + 40.0 * tokens[..., 0].float()  # [B, T]
        amp = (tokens[..., 1].float() + 1) / self.acoustic_vocab_size * 0.5
        audio = (amp.unsqueeze(-1) * torch.sin(2 * math.pi * freq.unsqueeze(-1) * time)).reshape(tokens.shape[0], -1)
        n_samples = lengths.long() * self.hop
        audio = audio.masked_fill(torch.arange(audio.shape[1]) >= n_samples.unsqueeze(1), 0.0)
        return DecodeOutput(audio=audio, lengths=n_samples, sample_rate=self.sample_rate)


def make_clip(seed: int, seconds: float = 0.1, sample_rate: int = 16000) -> torch.Tensor:
    """A deterministic test waveform whose loudness and pitch vary with ``seed``."""
    g = torch.Generator().manual_seed(seed)
    n = int(seconds * sample_rate)
    t = torch.arange(n) / sample_rate
    env = torch.rand(8, generator=g).repeat_interleave(math.ceil(n / 8))[:n]
    return (env * torch.sin(2 * math.pi * (200 + 300 * torch.rand(1, generator=g)) * t)).float()
