"""The synthetic captioned sound set: determinism, content matches caption, datasets form."""

import re

import numpy as np
import pytest

from codec.data.synthetic import KINDS, SyntheticSoundConfig, make_sound, synthetic_dataset, synthetic_sounds


def _peak_hz(audio, rate):
    spec = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
    return spec.argmax() * rate / audio.size


def test_reproducible_from_seed_and_index():
    c = SyntheticSoundConfig(num_examples=10, seed=3)
    a, b = make_sound(7, c), make_sound(7, c)
    assert np.array_equal(a.audio, b.audio) and a.caption == b.caption
    other = make_sound(7, SyntheticSoundConfig(num_examples=10, seed=4))
    assert not np.array_equal(a.audio, other.audio) or a.caption != other.caption


def test_every_kind_appears_with_shape_and_peak():
    sounds = synthetic_sounds(SyntheticSoundConfig(num_examples=60, seconds=1.0))
    assert {s.kind for s in sounds} == set(KINDS)
    for s in sounds:
        assert s.audio.dtype == np.float32 and s.audio.shape == (16000,)
        assert np.abs(s.audio).max() == pytest.approx(0.5, abs=1e-6)


def test_tone_caption_states_its_frequency():
    sounds = synthetic_sounds(SyntheticSoundConfig(num_examples=20, kinds=("tone",)))
    for s in sounds:
        stated = float(re.search(r"at (\d+) Hz", s.caption).group(1))
        assert abs(_peak_hz(s.audio, s.sample_rate) - s.params["frequency"]) < 2
        assert abs(stated - s.params["frequency"]) <= 0.5


def test_clicks_rate_matches_caption():
    for s in synthetic_sounds(SyntheticSoundConfig(num_examples=5, kinds=("clicks",), seconds=2.0)):
        onsets = np.flatnonzero(np.diff((np.abs(s.audio) > 0.05).astype(int)) == 1)
        assert abs(len(onsets) / 2.0 - s.params["rate"]) <= 1


def test_dataset_columns():
    ds = synthetic_dataset(SyntheticSoundConfig(num_examples=4, seconds=0.5))
    assert set(ds.column_names) == {"audio", "caption", "kind", "frequency"}
    row = ds[0]
    assert row["audio"]["sampling_rate"] == 16000 and len(row["audio"]["array"]) == 8000


def test_config_errors():
    with pytest.raises(ValueError, match="kinds"):
        SyntheticSoundConfig(kinds=("violin",))
    with pytest.raises(ValueError, match="MIDI range"):
        SyntheticSoundConfig(notes=(80, 40))


def test_detuned_tones_leave_the_note_grid_within_the_limit():
    import math

    from codec.data.synthetic import SyntheticSoundConfig, make_sound, note_frequency

    grid = SyntheticSoundConfig(num_examples=40, kinds=("tone",), seconds=0.2)
    detuned = SyntheticSoundConfig(num_examples=40, kinds=("tone",), seconds=0.2, detune_cents=50.0)
    cents = []
    for i in range(40):
        exact, off = make_sound(i, grid), make_sound(i, detuned)
        f = off.params["frequency"]
        cents.append(1200 * math.log2(f / exact.params["frequency"]))
        assert exact.params["frequency"] == note_frequency(round(69 + 12 * math.log2(exact.params["frequency"] / 440)))
        assert f"{f:.0f} Hz" in off.caption
    assert max(abs(c) for c in cents) <= 50.0 and max(abs(c) for c in cents) > 10.0
    with pytest.raises(ValueError, match="detune_cents"):
        SyntheticSoundConfig(detune_cents=150.0)


def test_tone_grid_snaps_tone_frequencies():
    from codec.data.synthetic import SyntheticSoundConfig, make_sound

    config = SyntheticSoundConfig(num_examples=20, kinds=("tone",), seconds=0.2, detune_cents=50.0, tone_grid_hz=100.0)
    freqs = [make_sound(i, config).params["frequency"] for i in range(20)]
    assert all(f % 100 == 0 and 100 <= f <= 1000 for f in freqs) and len(set(freqs)) > 3
    assert all(f"{f:.0f} Hz" in make_sound(i, config).caption for i, f in enumerate(freqs))
    with pytest.raises(ValueError, match="tone_grid_hz"):
        SyntheticSoundConfig(tone_grid_hz=-1.0)


def test_peak_range_varies_the_level_and_keeps_every_other_draw():
    fixed = SyntheticSoundConfig(num_examples=30, seconds=0.3, detune_cents=50.0)
    varied = SyntheticSoundConfig(num_examples=30, seconds=0.3, detune_cents=50.0, peak_range=(0.2, 0.7))
    peaks = []
    for i in range(30):
        a, b = make_sound(i, fixed), make_sound(i, varied)
        peak = float(np.abs(b.audio).max())
        peaks.append(b.params["peak"])
        assert peak == pytest.approx(b.params["peak"], abs=1e-6) and 0.2 <= peak <= 0.7
        # the same sound, only louder or softer
        assert a.caption == b.caption and a.kind == b.kind
        np.testing.assert_allclose(a.audio * (peak / 0.5), b.audio, atol=1e-5)
    assert max(peaks) - min(peaks) > 0.2
    assert [make_sound(i, varied).params["peak"] for i in range(5)] == peaks[:5]  # reproducible
    with pytest.raises(ValueError, match="peak_range"):
        SyntheticSoundConfig(peak_range=(0.8, 0.2))
    with pytest.raises(ValueError, match="peak_range"):
        SyntheticSoundConfig(peak_range=(0.0, 0.5))
