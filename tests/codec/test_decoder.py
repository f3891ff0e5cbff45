"""Fast tests of the diffusion decoder on a tiny configuration (random weights, CPU)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from codec.decoder import sinusoidal_table
from codec.sampling import (
    DecodeSettings,
    build_scheduler,
    num_noise_draws,
    official_alphas_cumprod,
    official_ddim_timesteps,
)
from codec.unet import upcast_resnet_group_norms
from codec.windowing import overlap_add, split_windows

STEPS = 2
DDIM = DecodeSettings(steps=STEPS)
DPM_3 = DecodeSettings(sampler="dpmsolver++", steps=3)


def _tokens(config, batch: int, frames: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    sem = torch.randint(0, config.semantic_codebook_size, (batch, frames, 1), generator=g)
    ac = torch.randint(0, config.acoustic_codebook_size, (batch, frames, 1), generator=g)
    return torch.cat([sem, ac], dim=-1)


def _noise(decoder, n_windows: int, draws: int = STEPS + 1, seed: int = 0) -> torch.Tensor:
    return decoder.draw_noise(n_windows, draws, torch.Generator().manual_seed(seed), "cpu")


# ----- windowing -----------------------------------------------------------------------------
def test_split_windows_matches_official_rule():
    assert split_windows(600, 512, 32) == [(0, 512), (480, 600)]
    assert split_windows(512, 512, 32) == [(0, 512)]
    assert split_windows(513, 512, 32) == [(0, 512), (480, 513)]
    assert split_windows(1, 64, 4) == [(0, 1)]
    assert split_windows(200, 64, 4) == [(0, 64), (60, 124), (120, 184), (180, 200)]


def test_overlap_add_matches_sequential_crossfade():
    rng = np.random.default_rng(0)
    windows = rng.standard_normal((3, 50)).astype(np.float32)
    ov = 8
    expected = windows[0].copy()
    for w in windows[1:]:
        w = w.copy()
        w[:ov] *= np.linspace(0, 1, ov)
        expected[-ov:] *= np.linspace(1, 0, ov)
        expected[-ov:] += w[:ov]
        expected = np.concatenate([expected, w[ov:]])
    out = overlap_add(torch.from_numpy(windows), ov)
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-6)
    assert torch.equal(overlap_add(torch.from_numpy(windows[:1]), ov), torch.from_numpy(windows[0]))


def test_sinusoidal_table_layout():
    pe = sinusoidal_table(4, 6)
    w = np.exp(-np.arange(0, 6, 2) * np.log(10000.0) / 6)
    np.testing.assert_allclose(pe[:, 0::2].numpy(), np.sin(np.arange(4)[:, None] * w), atol=1e-6)
    np.testing.assert_allclose(pe[:, 1::2].numpy(), np.cos(np.arange(4)[:, None] * w), atol=1e-6)


# ----- sampler schedule ------------------------------------------------------------------------
def test_official_ddim_timesteps():
    assert official_ddim_timesteps(5).tolist() == [801, 601, 401, 201, 1]
    assert len(official_ddim_timesteps(50)) == 50
    ts = official_ddim_timesteps(30)  # 1000 // 30 = 33 -> 31 steps, as the official code runs
    assert len(ts) == 31 and ts[0] == 991 and ts[-1] == 1
    assert official_ddim_timesteps(3).tolist() == [667, 334, 1]  # the official 1000 is out of range
    assert num_noise_draws("ddim", 30) == 32 and num_noise_draws("dpmsolver++", 30) == 1


@pytest.mark.parametrize("steps", [5, 30])
def test_ddim_step_matches_official_formula(config, steps):
    """One DDIM step of the configured diffusers scheduler equals the official LDM update."""
    sched = build_scheduler(config, "ddim", steps)
    ac = torch.cumprod(1 - torch.linspace(0.0015**0.5, 0.0195**0.5, 1000, dtype=torch.float64) ** 2, 0).float()
    torch.testing.assert_close(sched.alphas_cumprod, ac, rtol=0, atol=0)
    ts = official_ddim_timesteps(steps)
    g = torch.Generator().manual_seed(0)
    x, v, z = (torch.randn(1, 2, 3, 4, generator=g) for _ in range(3))
    for i, t in enumerate(ts):
        a_t = ac[t]
        a_prev = ac[ts[i + 1]] if i + 1 < len(ts) else ac[0]
        sigma = ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)).sqrt()
        e_t = a_t.sqrt() * v + (1 - a_t).sqrt() * x
        x0 = a_t.sqrt() * x - (1 - a_t).sqrt() * v
        expected = a_prev.sqrt() * x0 + (1 - a_prev - sigma**2).sqrt() * e_t + sigma * z
        got = sched.step(v, int(t), x, eta=1.0, variance_noise=z, return_dict=False)[0]
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_alphas_cumprod_is_float64_derived(config):
    torch.testing.assert_close(official_alphas_cumprod(config)[-1], torch.tensor(0.0 + np.cumprod(
        1 - np.linspace(0.0015**0.5, 0.0195**0.5, 1000) ** 2)[-1], dtype=torch.float32), rtol=0, atol=0)


# ----- decode --------------------------------------------------------------------------------
def test_decode_shapes_and_lengths(config, decoder, tables):
    w = config.window_tokens
    lengths = [2 * w, w // 2 + 3]
    tokens = _tokens(config, 2, max(lengths))
    out = decoder.decode(tokens, *tables, lengths=lengths, settings=DDIM, generator=torch.Generator().manual_seed(0))
    expected = [config.num_samples(n) for n in lengths]
    assert out.lengths.tolist() == expected
    assert out.audio.shape == (2, max(expected)) and out.sample_rate == 16000
    assert out.audio.dtype == torch.float32 and torch.isfinite(out.audio).all()
    assert torch.all(out.audio[1, expected[1] :] == 0)
    assert [len(a) for a in out.unbatch()] == expected


def test_batched_equals_one_by_one(config, decoder, tables):
    w = config.window_tokens
    lengths = [w + 5, w // 3]  # 2 + 1 windows
    tokens = _tokens(config, 2, max(lengths), seed=3)
    plan = decoder.plan_windows(lengths)
    assert plan.clip == [0, 1, 0]  # the noise order: window 0 of each clip, then window 1
    noise = _noise(decoder, len(plan))
    both = decoder.decode(tokens, *tables, lengths=lengths, settings=DDIM, noise=noise, batch_size=16)
    first = decoder.decode(tokens[:1], *tables, settings=DDIM, noise=noise[[0, 2]], batch_size=1)
    second = decoder.decode(tokens[1:, : lengths[1]], *tables, settings=DDIM, noise=noise[[1]], batch_size=1)
    torch.testing.assert_close(both.unbatch()[0], first.audio[0], rtol=0, atol=1e-4)
    torch.testing.assert_close(both.unbatch()[1], second.audio[0], rtol=0, atol=1e-4)


def test_generator_reproducible(config, decoder, tables):
    tokens = _tokens(config, 1, 10)
    runs = [decoder.decode(tokens, *tables, settings=DDIM, generator=torch.Generator().manual_seed(s)).audio
            for s in (7, 7, 8)]
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


def test_generator_stream_does_not_depend_on_batch_size(config, decoder, tables):
    tokens = _tokens(config, 1, config.window_tokens + 5)  # 2 windows
    a, b = (decoder.decode(tokens, *tables, settings=DDIM, batch_size=bs, generator=torch.Generator().manual_seed(5))
            for bs in (1, 2))
    torch.testing.assert_close(a.audio, b.audio, rtol=0, atol=1e-4)


def test_noise_with_singleton_axis_is_accepted(config, decoder, tables):
    tokens = _tokens(config, 1, 10)
    noise = _noise(decoder, 1)
    a = decoder.decode(tokens, *tables, settings=DDIM, noise=noise)
    b = decoder.decode(tokens, *tables, settings=DDIM, noise=noise.unsqueeze(2))
    assert torch.equal(a.audio, b.audio)


def test_dpm_solver_runs(config, decoder, tables):
    tokens = _tokens(config, 1, config.window_tokens + 5)
    out = decoder.decode(tokens, *tables, settings=DPM_3, generator=torch.Generator().manual_seed(0))
    assert out.lengths.tolist() == [config.num_samples(config.window_tokens + 5)]
    assert torch.isfinite(out.audio).all()
    noise = _noise(decoder, 2, draws=1)
    a = decoder.decode(tokens, *tables, settings=DPM_3, noise=noise)
    b = decoder.decode(tokens, *tables, settings=DPM_3, noise=noise)
    assert torch.equal(a.audio, b.audio)  # deterministic given x_T


def test_cfg_scale_one_and_eta_zero_run(config, decoder, tables):
    tokens = _tokens(config, 1, 10)
    out = decoder.decode(tokens, *tables, settings=DecodeSettings(steps=STEPS, cfg_scale=1.0, eta=0.0), noise=_noise(decoder, 1))
    assert torch.isfinite(out.audio).all()


def test_fp32_groupnorm_upcast_is_exact_in_fp32(config, decoder):
    from codec.unet import build_unet

    torch.manual_seed(0)
    plain = build_unet(config).eval()
    upcast = build_unet(config).eval()
    upcast.load_state_dict(plain.state_dict())
    upcast_resnet_group_norms(upcast)
    x = torch.randn(1, config.latent_channels, config.latent_time, config.latent_freq)
    ctx = torch.randn(1, config.window_tokens, config.context_dim)
    t = torch.tensor([10])
    with torch.inference_mode():
        assert torch.equal(plain(x, t, ctx).sample, upcast(x, t, ctx).sample)
        half = upcast.to(torch.bfloat16)(x.bfloat16(), t, ctx.bfloat16()).sample
    assert half.dtype == torch.bfloat16 and torch.isfinite(half.float()).all()


# ----- input validation ----------------------------------------------------------------------
def _bad_cases(config):
    good = _tokens(config, 1, 5)
    sem_hi = good.clone()
    sem_hi[0, 2, 0] = config.semantic_codebook_size
    ac_hi = good.clone()
    ac_hi[0, 1, 1] = config.acoustic_codebook_size
    neg = good.clone()
    neg[0, 0, 0] = -1
    return [
        ("not a tensor", dict(tokens=[[1, 2]]), TypeError, "tokens"),
        ("float tokens", dict(tokens=good.float()), TypeError, "integer"),
        ("three streams", dict(tokens=torch.zeros(1, 5, 3, dtype=torch.long)), ValueError, r"\[B, T, 2\]"),
        ("rank 4", dict(tokens=good[None]), ValueError, r"\[B, T, 2\]"),
        ("empty", dict(tokens=torch.zeros(1, 0, 2, dtype=torch.long)), ValueError, "empty"),
        ("semantic id", dict(tokens=sem_hi), ValueError, "semantic token ids"),
        ("acoustic id", dict(tokens=ac_hi), ValueError, "acoustic token ids"),
        ("negative id", dict(tokens=neg), ValueError, "semantic token ids"),
        ("steps 0", dict(steps=0), ValueError, "steps=0"),
        ("steps float", dict(steps=1.5), TypeError, "steps"),
        ("sampler", dict(sampler="euler_ancestral"), ValueError, "sampler='euler_ancestral'"),
        ("noise shape", dict(noise=torch.zeros(1, STEPS, config.latent_channels, config.latent_time,
                                               config.latent_freq)), ValueError, "noise must have shape"),
        ("noise windows", dict(noise=torch.zeros(2, STEPS + 1, config.latent_channels, config.latent_time,
                                                 config.latent_freq)), ValueError, "n_windows=1"),
        ("noise dtype", dict(noise=torch.zeros(1, STEPS + 1, 8, 32, 16, dtype=torch.long)), TypeError, "noise"),
        ("noise and generator", dict(noise=torch.zeros(1, STEPS + 1, config.latent_channels, config.latent_time,
                                                       config.latent_freq), generator=torch.Generator()),
         ValueError, "either noise"),
        ("lengths count", dict(lengths=[5, 5]), ValueError, "lengths"),
        ("lengths too long", dict(lengths=[6]), ValueError, "lengths"),
        ("lengths zero", dict(lengths=[0]), ValueError, "lengths"),
        ("batch_size", dict(batch_size=0), ValueError, "batch_size"),
        ("table width", dict(acoustic_codebook=torch.zeros(64, 3)), ValueError, "acoustic_codebook"),
        ("settings type", dict(settings={"steps": STEPS}), TypeError, "DecodeSettings"),
    ]


@pytest.mark.parametrize("case", range(21))
def test_decode_rejects_bad_input(config, decoder, tables, case):
    cases = _bad_cases(config)
    _, kwargs, error, match = cases[case]
    args = dict(tokens=_tokens(config, 1, 5), acoustic_codebook=tables[0], semantic_centroids=tables[1])
    args.update(kwargs)
    fields = {k: args.pop(k) for k in ("steps", "sampler") if k in args}
    with pytest.raises(error, match=match):
        if "settings" not in args:
            args["settings"] = DecodeSettings(**{"steps": STEPS, **fields})
        decoder.decode(**args)


def test_bad_case_count_matches(config):
    assert len(_bad_cases(config)) == 21


def test_import_codec_is_cheap():
    code = "import sys, codec; print(any(m in sys.modules for m in ('diffusers', 'transformers')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ----- through SemantiCodec --------------------------------------------------------------------
@pytest.fixture(scope="module")
def codec(config):
    from codec.model import SemantiCodec

    torch.manual_seed(0)
    return SemantiCodec(config, with_decoder=True)


def test_codec_encode_decode_round_trip(config, codec):
    clips = [torch.randn(8000) * 0.1, torch.randn(30000) * 0.1]
    enc = codec.encode(clips)
    out = codec.decode(enc, settings=DDIM, generator=torch.Generator().manual_seed(0))
    assert out.lengths.tolist() == [config.num_samples(int(n)) for n in enc.lengths]
    for clip, n in zip(clips, out.lengths.tolist(), strict=True):
        assert clip.numel() <= n < clip.numel() + config.patch_samples + 1  # rounded up to 0.16 s
    assert out.audio.shape == (2, max(out.lengths.tolist()))


def test_codec_save_load_keeps_decoder(tmp_path, codec):
    from codec.model import SemantiCodec

    codec.save_pretrained(tmp_path)
    loaded = SemantiCodec.from_pretrained(tmp_path)
    tokens = torch.randint(0, 64, (1, 12, 2))
    a = codec.decode(tokens, settings=DDIM, generator=torch.Generator().manual_seed(3)).audio
    b = loaded.decode(tokens, settings=DDIM, generator=torch.Generator().manual_seed(3)).audio
    assert torch.equal(a, b)
    encode_only = SemantiCodec.from_pretrained(tmp_path, load_decoder=False)
    with pytest.raises(RuntimeError, match="no decoder"):
        encode_only.decode(tokens)


def test_codec_decode_defaults_to_the_variants_guidance_scale(config, codec):
    """Without cfg_scale, decode uses config.cfg_scale (official 2.0; a trained variant may set its own)."""
    import dataclasses

    from codec.model import SemantiCodec

    tokens = torch.randint(0, 64, (1, 12, 2))

    def run(model, cfg_scale=None):
        settings = DecodeSettings(steps=STEPS, cfg_scale=cfg_scale)
        return model.decode(tokens, settings=settings, generator=torch.Generator().manual_seed(5)).audio

    assert torch.equal(run(codec), run(codec, cfg_scale=config.cfg_scale))
    other = SemantiCodec(dataclasses.replace(config, cfg_scale=1.0), with_decoder=True)
    other.load_state_dict(codec.state_dict())
    assert torch.equal(run(other), run(codec, cfg_scale=1.0))
    batches = []  # guidance doubles the UNet batch (uncond + cond); scale 1 runs the cond half only
    for model in (codec, other):
        hook = model.decoder.unet.register_forward_hook(lambda m, args, out: batches.append(args[0].shape[0]))
        run(model)
        hook.remove()
    assert set(batches[:STEPS]) == {2} and set(batches[STEPS:]) == {1}


# ----- decode settings through SemantiCodec.decode ---------------------------------------------
@pytest.fixture(scope="module")
def tiny_random():
    from codec.model import SemantiCodec

    return SemantiCodec.tiny_random(50)


def test_codec_decode_takes_sampler_fields_in_settings_only(tiny_random):
    """The sampler's fields live in DecodeSettings; the loose keywords of earlier releases are a TypeError
    that says where they went."""
    tokens = torch.zeros(1, 4, 2, dtype=torch.long)
    with pytest.raises(TypeError, match=r"settings=DecodeSettings\(steps=3, sampler='dpmsolver\+\+'\) instead of steps="):
        tiny_random.decode(tokens, steps=3, sampler="dpmsolver++")
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['step'\]"):
        tiny_random.decode(tokens, step=3)
    with pytest.raises(TypeError, match="DecodeSettings"):
        tiny_random.decode(tokens, None, {"steps": STEPS})


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(cfg_scale=float("nan")), ValueError, "cfg_scale must be a finite number"),
        (dict(steps=0), ValueError, "steps=0"),
        (dict(sampler="euler_ancestral"), ValueError, "sampler='euler_ancestral'"),
        (dict(eta=-1.0), ValueError, "eta must be >= 0"),
    ],
)
def test_decode_settings_reject_bad_values(kwargs, error, match):
    with pytest.raises(error, match=match):
        DecodeSettings(**kwargs)
