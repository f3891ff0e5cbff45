"""``semantilm decode --sampler distilled``: the tiny codec's distilled decoder from the command line,
and a clear usage error for a codec without one."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from semantilm.cli.main import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_decode_with_the_distilled_decoder(tmp_path, capsys):
    t = np.arange(16000) / 16000
    sf.write(tmp_path / "tone.wav", 0.5 * np.sin(2 * np.pi * 400 * t), 16000)
    assert main(["encode", str(tmp_path / "tone.wav"), "--codec", "tiny", "--out", str(tmp_path / "tok")]) == 0
    assert main(["decode", str(tmp_path / "tok"), "--out", str(tmp_path / "wav"), "--sampler", "distilled"]) == 0
    wave, rate = sf.read(next((tmp_path / "wav").glob("*.wav")))
    assert rate == 16000 and abs(len(wave) - 16000) < 400 and np.abs(wave).max() > 0.01
    capsys.readouterr()
    code = main(["decode", str(tmp_path / "tok"), "--out", str(tmp_path / "wav2"), "--sampler", "distilled",
                 "--steps", "3"])
    assert code != 0 and "trained for steps [1, 2, 4], not steps=3" in capsys.readouterr().err
