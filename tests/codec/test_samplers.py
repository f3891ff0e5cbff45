"""The decoder's samplers (codec.sampling.SAMPLER_SPECS) on tiny decoders with random weights (CPU).

Every sampler decodes to finite audio of the right length; the deterministic ones depend on x_T
only; each approaches the 200-step deterministic DDIM (eta 0) from the same x_T as its steps grow.
"""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch

from codec.config import SemantiCodecConfig
from codec.decoder import DiffusionDecoder
from codec.model import SemantiCodec
from codec.sampling import (
    SAMPLER_SPECS,
    SAMPLERS,
    STEP_NOISE_SAMPLERS,
    DecodeSettings,
    build_scheduler,
    check_sampler_args,
    log_snr_timesteps,
    num_noise_draws,
    num_sampler_steps,
    official_betas,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DETERMINISTIC = [s for s in SAMPLERS if s not in STEP_NOISE_SAMPLERS]
REFERENCE_STEPS = 200


def test_the_mapping_names_the_issue_samplers_and_the_official_ones():
    assert {"ddim", "dpmsolver++", "dpm++2m", "dpm++3m", "dpm++2m-logsnr", "unipc", "deis", "euler"} <= set(SAMPLERS)
    assert SAMPLERS == tuple(SAMPLER_SPECS) and STEP_NOISE_SAMPLERS == ("ddim",)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_scheduler_uses_the_official_v_prediction_schedule(sampler):
    config = SemantiCodecConfig.tiny()
    scheduler = build_scheduler(config, sampler, 10)
    assert type(scheduler).__name__ == SAMPLER_SPECS[sampler].scheduler
    assert scheduler.config.prediction_type == "v_prediction"
    expected = torch.cumprod(1 - official_betas(config), 0).float()
    torch.testing.assert_close(scheduler.alphas_cumprod.float(), expected, rtol=1e-5, atol=1e-6)
    assert int(scheduler.timesteps.max()) >= 900  # starts near pure noise, where x_T lives


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_step_and_draw_counts_follow_the_scheduler(sampler):
    config = SemantiCodecConfig.tiny()
    for steps in (1, 2, 3, 7, 12, 30, 50, 200):
        visited = build_scheduler(config, sampler, steps).timesteps
        assert num_sampler_steps(sampler, steps) == len(visited), steps
        assert len(set(visited.tolist())) == len(visited), steps
        draws = num_noise_draws(sampler, steps)
        assert draws == (len(visited) + 1 if sampler in STEP_NOISE_SAMPLERS else 1)


def test_log_snr_timesteps_are_uniform_in_log_snr_and_end_before_t0():
    config = SemantiCodecConfig.tiny()
    alphas_cumprod = torch.cumprod(1 - official_betas(config), 0)
    log_snr = (alphas_cumprod / (1 - alphas_cumprod)).log()
    timesteps = log_snr_timesteps(config, 5)
    assert timesteps[0] == 999 and timesteps[-1] > 0
    gaps = torch.diff(log_snr[timesteps + [0]])  # the last step goes to t = 0's noise level
    torch.testing.assert_close(gaps, gaps.mean().expand(5), rtol=0.02, atol=0)
    assert build_scheduler(config, "dpm++2m-logsnr", 5).timesteps.tolist() == timesteps


@pytest.mark.parametrize("name", ["euler_ancestral", "dpm++2m-sde", "heun", "DDIM", None, 3])
def test_unknown_sampler_names_the_choices(name):
    with pytest.raises(ValueError, match="is not supported; use one of ddim, dpmsolver\\+\\+, .*euler") as err:
        check_sampler_args(name, 10)
    assert repr(name) in str(err.value)
    with pytest.raises(ValueError, match="not supported"):
        DecodeSettings(sampler=name)


@pytest.mark.parametrize("sampler", DETERMINISTIC)
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_eta_with_a_sampler_that_ignores_it_is_refused(sampler, eta):
    """Only DDIM adds noise per step; any eta given with another sampler (even the default's
    value) would be ignored, so it is a ValueError naming both, however the settings are made."""
    from codec.sampling import decode_settings

    words = [f"eta={eta!r}", "only applies to the ddim sampler", f"sampler={sampler!r}"]
    for make in (lambda: DecodeSettings(sampler=sampler, eta=eta),
                 lambda: decode_settings(None, sampler=sampler, eta=eta),
                 lambda: decode_settings(DecodeSettings(eta=eta), sampler=sampler)):
        with pytest.raises(ValueError) as err:
            make()
        assert all(w in str(err.value) for w in words), str(err.value)
    assert DecodeSettings(sampler=sampler).eta is None  # unset: fine
    assert DecodeSettings(eta=eta).ddim_eta == eta and DecodeSettings().ddim_eta == 1.0  # DDIM: official 1


# ----- on a decoder ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def codec() -> SemantiCodec:
    return SemantiCodec.tiny_random()


@pytest.mark.parametrize("sampler", DETERMINISTIC)
def test_codec_decode_refuses_eta_with_a_sampler_that_ignores_it(codec, sampler):
    tokens = torch.zeros(1, 4, 2, dtype=torch.long)
    with pytest.raises(ValueError, match=re.escape(f"eta=0.0 only applies to the ddim sampler; sampler={sampler!r}")):
        codec.decode(tokens, settings=DecodeSettings(sampler=sampler, steps=2, eta=0.0))
    with pytest.raises(ValueError, match="only applies to the ddim sampler"):
        dataclasses.replace(DecodeSettings(steps=2, eta=0.0), sampler=sampler)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_decodes_finite_audio_of_the_right_length(codec, sampler):
    c = codec.config
    g = torch.Generator().manual_seed(0)
    tokens = torch.stack([torch.randint(0, c.semantic_codebook_size, (1, 21), generator=g),
                          torch.randint(0, c.acoustic_codebook_size, (1, 21), generator=g)], dim=-1)
    out = codec.decode(tokens, settings=DecodeSettings(sampler=sampler, steps=2), generator=torch.Generator().manual_seed(1))
    assert out.lengths.tolist() == [c.num_samples(21)] and out.audio.shape == (1, c.num_samples(21))
    assert torch.isfinite(out.audio).all() and out.audio.abs().max() > 0


@pytest.fixture(scope="module")
def small():
    """A one-level tiny decoder (1.28 s windows), its lookup tables, one window of tokens and x_T."""
    config = SemantiCodecConfig.tiny(segment_frames=64, latent_time=16, unet_block_channels=(32,))
    torch.manual_seed(0)
    decoder = DiffusionDecoder(config).eval()
    g = torch.Generator().manual_seed(1)
    tables = (torch.randn(config.acoustic_codebook_size, config.feature_dim, generator=g),
              torch.randn(config.semantic_codebook_size, config.feature_dim, generator=g))
    frames = config.window_tokens  # one full window
    tokens = torch.stack([torch.randint(0, config.semantic_codebook_size, (1, frames), generator=g),
                          torch.randint(0, config.acoustic_codebook_size, (1, frames), generator=g)], dim=-1)
    x_t = decoder.draw_noise(1, 1, torch.Generator().manual_seed(2), "cpu")
    return decoder, tables, tokens, x_t


def _latents(small, sampler: str, steps: int, noise: torch.Tensor | None = None, eta: float = 0.0) -> torch.Tensor:
    """Final latents from x_T (DDIM's step noises are zeros unless ``noise`` is given; only DDIM takes ``eta``)."""
    decoder, tables, tokens, x_t = small
    if noise is None:
        noise = torch.cat([x_t, x_t.new_zeros(1, num_noise_draws(sampler, steps) - 1, *x_t.shape[2:])], dim=1)
    settings = DecodeSettings(sampler=sampler, steps=steps, eta=eta if sampler == "ddim" else None)
    return decoder.decode_latents(tokens, *tables, settings=settings, noise=noise)[0]


@pytest.fixture(scope="module")
def reference(small) -> torch.Tensor:
    return _latents(small, "ddim", REFERENCE_STEPS)


def _distance(latents: torch.Tensor, reference: torch.Tensor) -> float:
    return float((latents - reference).norm() / reference.norm())


@pytest.mark.parametrize("sampler", DETERMINISTIC)
def test_deterministic_samplers_depend_on_x_t_only(small, sampler):
    x_t = small[3]
    first = _latents(small, sampler, 4)
    assert torch.equal(first, _latents(small, sampler, 4))
    more_draws = torch.cat([x_t, torch.randn(1, 4, *x_t.shape[2:])], dim=1)  # steps + 1 draws: only x_T is read
    assert torch.equal(first, _latents(small, sampler, 4, noise=more_draws))
    assert not torch.equal(first, _latents(small, sampler, 4, noise=x_t + 0.1))


@pytest.mark.parametrize("sampler", DETERMINISTIC)
def test_samplers_approach_the_deterministic_ddim_reference(small, reference, sampler):
    few, many = _distance(_latents(small, sampler, 5), reference), _distance(_latents(small, sampler, 30), reference)
    assert many < 0.25 * few and many < 0.06, (few, many)  # measured: 0.20-0.27 -> 0.006-0.047


def test_ddim_with_eta_zero_converges_and_eta_one_does_not(small, reference):
    assert _distance(_latents(small, "ddim", 50), reference) < 0.5 * _distance(_latents(small, "ddim", 5), reference)
    x_t = small[3]
    step_noise = torch.randn(1, num_noise_draws("ddim", 50) - 1, *x_t.shape[2:], generator=torch.Generator().manual_seed(3))
    noise = torch.cat([x_t, step_noise], dim=1)
    assert _distance(_latents(small, "ddim", 50, noise=noise, eta=1.0), reference) > 0.2
