"""``semantilm decode --seed`` gives the audio of the Python API with the same seed: the token files of
one ``--batch-size`` group are one ``codec.decode`` call, which draws its noise in the one order of
``codec.decode_stream``. Embedded tiny codec, two clips of different lengths, CPU.

The wavs are 16-bit, so the Python API's audio is written the same way and compared sample for
sample: the two calls run the same UNet batches, so their floats are equal, not only close.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from codec import DecodeSettings
from codec.token_file import TokenFile, save_tokens
from plumbing.io import pad_stack
from semantilm.cli.main import main
from semantilm.codec_api import check_codec, load_codec

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LENGTHS = (75, 40)  # token frames: 3 and 2 decoder windows of the tiny codec


@pytest.fixture(scope="module")
def codec():
    return check_codec(load_codec("tiny"))


def _token_files(codec, folder) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(11)
    rows = []
    for name, n in zip("ab", LENGTHS, strict=True):
        tokens = torch.stack([torch.randint(0, codec.semantic_vocab_size, (n,), generator=g),
                              torch.randint(0, codec.acoustic_vocab_size, (n,), generator=g)], dim=-1)
        save_tokens(folder / f"{name}.tokens.npz", TokenFile(
            tokens=tokens, codec_variant=codec.variant, token_rate=codec.config.token_rate,
            semantic_vocab_size=codec.semantic_vocab_size, acoustic_vocab_size=codec.acoustic_vocab_size,
            num_samples=codec.config.num_samples(n), source_sample_rate=codec.sample_rate, source=f"{name}.wav",
        ))
        rows.append(tokens)
    return rows


def _as_16_bit(wave: torch.Tensor, path) -> np.ndarray:
    sf.write(path, wave.clamp(-1, 1).numpy(), 16000, subtype="PCM_16")
    return sf.read(path, dtype="int16")[0]


@pytest.mark.parametrize("sampler", ["ddim", "dpmsolver++"])
def test_decode_with_a_seed_equals_the_python_api(codec, tmp_path, sampler):
    folder = tmp_path / "tokens"
    folder.mkdir()
    rows = _token_files(codec, folder)
    out = tmp_path / "wav"
    assert main(["decode", str(folder), "--codec", "tiny", "--sampler", sampler, "--steps", "2", "--seed", "5",
                 "--out", str(out)]) == 0

    tokens, lengths = pad_stack(rows)
    api = codec.decode(tokens, lengths, settings=DecodeSettings(sampler=sampler, steps=2),
                       generator=torch.Generator().manual_seed(5), batch_size=8)  # --batch-size's default
    for name, wave in zip("ab", api.unbatch(), strict=True):
        written = sf.read(out / f"{name}.wav", dtype="int16")[0]
        assert np.array_equal(written, _as_16_bit(wave, tmp_path / f"api_{name}.wav")), name
    other_seed = codec.decode(tokens, lengths, settings=DecodeSettings(sampler=sampler, steps=2),
                              generator=torch.Generator().manual_seed(6))
    assert not np.array_equal(sf.read(out / "a.wav", dtype="int16")[0],
                              _as_16_bit(other_seed.unbatch()[0], tmp_path / "other.wav"))
