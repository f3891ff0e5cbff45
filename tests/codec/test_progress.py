"""Progress of long codec calls: bars on a terminal, nothing off one (``plumbing.progress``).

``with terminal:`` (tests/conftest.py) puts a stream that says it is a terminal in place of
stderr; pytest's own captured stderr is not a terminal."""

from __future__ import annotations

import pytest
import torch

from codec.model import SemantiCodec
from plumbing.progress import progress_bar, progress_enabled

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def codec() -> SemantiCodec:
    return SemantiCodec.tiny_random()


@pytest.fixture(scope="module")
def tokens(codec) -> torch.Tensor:
    c = codec.config
    g = torch.Generator().manual_seed(0)
    return torch.stack([torch.randint(0, c.semantic_codebook_size, (1, 40), generator=g),
                        torch.randint(0, c.acoustic_codebook_size, (1, 40), generator=g)], dim=-1)


def test_bars_show_on_a_terminal_only_unless_asked(terminal):
    with terminal:
        assert progress_enabled() and progress_enabled(True) and not progress_enabled(False)
        list(progress_bar(range(3), desc="work", unit="step"))
    assert "work" in terminal.getvalue() and "0/3" in terminal.getvalue()
    with pytest.raises(TypeError, match="progress must be True, False or None"):
        progress_enabled("yes")


def test_bars_stay_quiet_off_a_terminal(capsys):
    assert not progress_enabled()
    list(progress_bar(range(3), desc="work"))
    assert capsys.readouterr().err == ""
    list(progress_bar(range(3), desc="work", progress=True))
    assert "work" in capsys.readouterr().err


def test_decode_shows_the_unet_steps_and_the_vae_vocoder_stage_on_a_terminal(codec, tokens, terminal):
    with terminal:
        codec.decode(tokens, steps=3, sampler="dpm++2m")
    drawn = terminal.getvalue()
    assert "dpm++2m (1 windows)" in drawn and "/3 [" in drawn and "VAE + vocoder" in drawn
    with terminal:
        codec.decode(tokens, steps=3, sampler="dpm++2m", progress=False)
    assert terminal.getvalue() == drawn


def test_decode_is_quiet_off_a_terminal(codec, tokens, capsys):
    codec.decode(tokens, steps=2, sampler="dpm++2m")
    assert capsys.readouterr().err == ""
    codec.decode(tokens, steps=2, sampler="dpm++2m", progress=True)
    assert "dpm++2m" in capsys.readouterr().err


def test_encode_of_several_batches_shows_them_on_a_terminal(codec, terminal, capsys):
    clip = 0.1 * torch.randn(int(12 * codec.sample_rate), generator=torch.Generator().manual_seed(0))
    with terminal:
        codec.encode(clip, codec.sample_rate, batch_size=1)  # two 10.24 s segments, one per batch
    assert "encode" in terminal.getvalue() and "/2 [" in terminal.getvalue()
    assert capsys.readouterr().err == ""
