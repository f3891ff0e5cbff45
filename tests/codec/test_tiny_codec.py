"""The embedded tiny trained codec (``--codec tiny``): it loads offline and keeps what matters.

Quality checks on held-out tones (new phases and level, not training clips): the
decoded audio's dominant frequency is within 3 % of the input's for at least 80 % of them, and
its mel distance to the input is clearly (>= 20 %) below that of decoding the same tokens
shuffled. The tones lie on the 100 Hz grid that a HiFi-GAN vocoder with hop 160 can render for a
steady input (docs/codec_training.md, "What a HiFi-GAN can emit for a steady sound").
"""

from __future__ import annotations

import pytest

from codec.eval.quality import tone_round_trip
from codec.model import SemantiCodec
from codec.sampling import DecodeSettings

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FIVE_STEPS = DecodeSettings(sampler="dpmsolver++", steps=5)
GRID_TONES = [200.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0, 900.0, 1000.0]


@pytest.fixture(scope="module")
def tiny() -> SemantiCodec:
    return SemantiCodec.from_pretrained("tiny")


def test_tiny_codec_is_small_and_complete(tiny):
    from codec.checkpoints import EMBEDDED_CODECS

    weights = EMBEDDED_CODECS["tiny"] / "model.safetensors"
    assert weights.stat().st_size <= 5_000_000
    assert tiny.variant == "tiny" and tiny.decoder is not None
    assert (EMBEDDED_CODECS["tiny"] / "TRAINING.md").read_text().count("train_tiny_codec.sh") >= 1


@pytest.mark.slow
def test_tiny_codec_keeps_the_pitch_of_held_out_tones(tiny):
    result = tone_round_trip(tiny, frequencies=GRID_TONES, peak=0.5, seed=0)
    misses = [(round(t["frequency"]), round(t["measured"], 1)) for t in result.tones if not t["ok"]]
    assert result.pitch_accuracy >= 0.8, f"pitch within 3 % for {result.pitch_accuracy:.0%}; misses {misses}"


@pytest.mark.slow
def test_tiny_codec_beats_shuffled_tokens(tiny):
    result = tone_round_trip(tiny, frequencies=GRID_TONES, peak=0.5, seed=1)
    assert result.mel_distance <= 0.8 * result.shuffled_mel_distance, (result.mel_distance, result.shuffled_mel_distance)


def test_pooled_pitch_counts_every_draw_and_agrees_with_one_round_trip(tiny):
    """pitch_over_draws (the benchmark's pooled measure) counts one decode per tone per draw, and
    a single draw of it is the same measurement as tone_round_trip's."""
    from codec.eval.quality import pitch_over_draws

    tones = [300.0, 700.0]
    pooled = pitch_over_draws(tiny, tones, phase_seeds=(1234,), peaks=(0.5, 0.3), noise_seeds=(0,), settings=FIVE_STEPS)
    assert list(pooled) == tones and all(n == 2 and 0 <= ok <= n for ok, n in pooled.values())
    single = tone_round_trip(tiny, frequencies=tones, peak=0.5, seed=0, settings=FIVE_STEPS)
    one = pitch_over_draws(tiny, tones, phase_seeds=(1234,), peaks=(0.5,), noise_seeds=(0,), settings=FIVE_STEPS)
    assert [ok for ok, _ in one.values()] == [int(t["ok"]) for t in single.tones]
    with pytest.raises(ValueError, match="noise_seeds"):
        pitch_over_draws(tiny, tones, noise_seeds=())


def test_mel_peak_position_places_a_peak_between_bins():
    import torch

    from codec.eval.quality import mel_peak_position

    bins = torch.arange(16, dtype=torch.float32)
    spectra = torch.stack([-(bins - 4.3) ** 2, -(bins - 11.0) ** 2, -(bins - 7.5) ** 2])
    assert torch.allclose(mel_peak_position(spectra), torch.tensor([4.3, 11.0, 7.5]), atol=1e-4)
    with pytest.raises(ValueError, match="at least 3 bins"):
        mel_peak_position(torch.zeros(2, 2))


def test_pitch_diagnostics_separate_the_tokens_from_the_decoder(tiny):
    """The diagnostics of docs/codec_training.md: tones 300 Hz apart have token sequences that
    tell them apart at every level; the decoded mel peak error is one finite value per tone."""
    from codec.eval.quality import decoded_mel_peak_error, token_pitch_identification

    told = token_pitch_identification(tiny, [300.0, 600.0, 900.0], peaks=(0.3, 0.5))
    assert told["both"] == told["acoustic"] == (6, 6) and 0 <= told["semantic"][0] <= 6
    err = decoded_mel_peak_error(tiny, [300.0, 800.0], peaks=(0.5,), noise_seeds=(0, 1), settings=FIVE_STEPS)
    assert err.frequencies == [300.0, 800.0] and len(err.bias) == len(err.spread) == 2
    assert all(abs(b) < 8 and 0 <= s < 8 for b, s in zip(err.bias, err.spread)) and err.mean_abs < 8
    with pytest.raises(ValueError, match="more than one decoder window"):
        decoded_mel_peak_error(tiny, [300.0, 800.0], peaks=(0.5,), noise_seeds=(0,), seconds=2.0, settings=DecodeSettings(sampler="dpmsolver++", steps=2))
    with pytest.raises(ValueError, match="at least 2 levels"):
        token_pitch_identification(tiny, [300.0, 600.0], peaks=(0.5,))
