"""Decoder parity with the official SemantiCodec, on the shared stand-in-weight fixtures.

Source: ``../shared/parity/`` (README there): the official decoder's state dict filled by
``fill.py`` rules, driven with the recorded ``enc_tokens`` and the recorded sampler draws
``dec_noise`` (the official DDIM is stochastic, eta = 1), 5 DDIM steps, CFG 2.0, CPU float32.
Tolerances are the README's: lookups 1e-6, one UNet forward 1e-4, latents / mel / waveform
1e-3 (thread-count changes alone move them by ~1e-5; an independent implementation reorders
more operations). Each full-size model is built once per configuration and freed after; the
decode runs twice, with the codec's fast paths and without (``codec.fast_paths(False)``).
"""

from __future__ import annotations

import gc
import math

import numpy as np
import pytest
import torch

from codec.config import SemantiCodecConfig
from codec.convert.decoder import ALLOWED_UNUSED
from codec.decoder import DiffusionDecoder
from codec.model import SemantiCodec
from codec.sampling import DecodeSettings
from codec.vocoder import vocode
from tests.codec.official_decoder import load_official_decoder
from tests.parity_weights import (
    CONFIGS,
    layout,
    official_decoder_state,
    official_decoder_tables,
    official_encoder_state,
    recorded,
)

# The end-to-end path (official encoder + decoder checkpoints -> SemantiCodec.from_official ->
# SemantiCodec.decode) is exercised on this configuration; the others build the decoder alone
# (filling the rate-25 LSTM costs 1.5 B values and adds nothing to the decoder check).
END_TO_END = "r100_v16384"
PARITY_SETTINGS = DecodeSettings(sampler="ddim", steps=5, cfg_scale=2.0)  # the recorded official run

pytestmark = [pytest.mark.parity, pytest.mark.slow]


def _config(spec: dict) -> SemantiCodecConfig:
    meta = spec["config"]
    return SemantiCodecConfig.official(
        meta["token_rate"], meta["semantic_vocab_size"], semantic_codebook_size=meta["n_semantic_centroids"]
    )


@pytest.fixture(scope="module", params=list(CONFIGS))
def case(request):
    """(name, layout, archive, decoder, acoustic codebook, semantic centroids, codec or None)."""
    name = request.param
    spec = layout(name)
    archive = recorded(name)
    acoustic, semantic = official_decoder_tables(name)
    codec = None
    if name == END_TO_END:
        encoder_state, centroids = official_encoder_state(name)
        rate, vocab = CONFIGS[name]
        codec = SemantiCodec.from_official(
            encoder_state, official_decoder_state(name), centroids, token_rate=rate, semantic_vocab_size=vocab
        )
        del encoder_state
        decoder = codec.decoder
        # The codec's own tables come from its encoder conversion; they must be the filled ones.
        assert torch.equal(codec.acoustic.codebook, acoustic) and torch.equal(codec.semantic.centroids, semantic)
    else:
        torch.manual_seed(0)
        decoder = DiffusionDecoder(_config(spec)).eval()
        load_official_decoder(decoder, official_decoder_state(name))
    yield name, spec, archive, decoder, acoustic, semantic, codec
    del decoder, acoustic, semantic, codec
    gc.collect()


@pytest.fixture(scope="module")
def decodes(case) -> dict:
    """The decodes of ``decoded`` by fast-path setting (one per setting and configuration)."""
    return {}


@pytest.fixture
def decoded(case, decodes, fast):
    """One public decode of the recorded tokens with the recorded noise, intermediates captured;
    with the fast paths on, then off."""
    if fast not in decodes:
        decodes[fast] = _decode_recorded(case)
    return decodes[fast]


def _decode_recorded(case):
    name, _, archive, decoder, acoustic, semantic, codec = case
    captured: dict[str, list[torch.Tensor]] = {"latent": [], "mel": [], "wave": [], "used": [], "heard": []}
    original = decoder.latents_to_waveform

    def recording(latents, samples=None):
        mel, heard = original(latents, samples)
        captured["latent"].append(latents)
        captured["mel"].append(mel)
        # the vocoder on whole windows (decode runs it only on the frames each window's kept audio needs)
        captured["wave"].append(vocode(decoder.vocoder, decoder.config, mel.squeeze(1)))
        captured["heard"].append(heard)
        captured["used"].append(torch.tensor(samples if samples is not None else [heard.shape[1]] * len(heard)))
        return mel, heard

    decoder.latents_to_waveform = recording
    tokens, noise = torch.from_numpy(archive["enc_tokens"]), torch.from_numpy(archive["dec_noise"])
    try:
        if codec is not None:  # the public SemantiCodec.decode
            out = codec.decode(tokens, settings=PARITY_SETTINGS, noise=noise)
        else:
            out = decoder.decode(tokens, acoustic, semantic, settings=PARITY_SETTINGS, noise=noise)
    finally:
        del decoder.latents_to_waveform
    return name, out, {k: torch.cat(v) for k, v in captured.items()}


def _compare(name: str, key: str, actual: torch.Tensor, expected: np.ndarray, atol: float) -> None:
    expected_t = torch.from_numpy(np.asarray(expected)).float()
    assert tuple(actual.shape) == tuple(expected_t.shape), f"{name} {key}: shape {tuple(actual.shape)} vs {expected_t.shape}"
    err = (actual.float() - expected_t).abs().max().item()
    print(f"{name} {key}: max abs err {err:.3g} (atol {atol:g})")
    assert err <= atol, f"{name} {key}: max abs error {err:.3g} > {atol:g}"


def _official_positional_table(length: int, dim: int) -> torch.Tensor:
    """The official positional encoding, written as its source writes it, evaluated on this machine."""
    position = torch.arange(0, length, dtype=torch.float).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, dim, 2).float() * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * div_term)
    table[:, 1::2] = torch.cos(position * div_term)
    return table


def _ulp(x: torch.Tensor) -> torch.Tensor:
    return torch.nextafter(x, torch.full_like(x, math.inf)) - x


def _compare_context(name: str, key: str, actual: torch.Tensor, expected: np.ndarray, positional_dim: int) -> None:
    """A context [1, W, 2D + P]: its feature columns are lookups (1e-6); its positional columns
    are ``sin / cos(p * w_i)`` with ``w_i = exp(...)`` in float32, and float32 ``exp`` may differ by
    one ulp between CPUs (the vectorised libm the recording's CPU used against this one's). They must
    equal the official formula evaluated here within 1e-6, and the recording within the bound that
    one ulp of ``w_i`` gives at position p: ``p * ulp(w_i) + ulp(p * w_i) + 1e-6``."""
    expected_t = torch.from_numpy(np.asarray(expected)).float()
    _compare(name, f"{key} features", actual[..., :-positional_dim], expected_t[..., :-positional_dim].numpy(), 1e-6)
    table = actual[0, :, -positional_dim:]
    official_here = _official_positional_table(table.shape[0], positional_dim)
    _compare(name, f"{key} positions (official formula, this CPU)", table, official_here.numpy(), 1e-6)
    freqs = torch.exp(torch.arange(0, positional_dim, 2).float() * (-math.log(10000.0) / positional_dim))
    angles = torch.arange(table.shape[0]).float().unsqueeze(1) * freqs  # [W, P / 2]
    # one ulp of w_i carried to position p, plus one ulp of the rounded product, plus sin / cos's own error
    bound = angles / freqs * _ulp(freqs) + _ulp(angles) + 1e-6
    bound = bound.repeat_interleave(2, dim=1)
    err = (table - expected_t[0, :, -positional_dim:]).abs()
    worst = (err / bound).max().item()
    print(f"{name} {key} positions vs recording: max abs err {err.max().item():.3g} ({worst:.2f} of the one-ulp bound)")
    assert worst <= 1.0, f"{name} {key}: positional columns differ from the recording by more than one ulp of w_i"


def test_conditioning(case):
    name, _, archive, decoder, acoustic, semantic, _ = case
    tokens = torch.from_numpy(archive["enc_tokens"])
    plan = decoder.plan_windows([tokens.shape[1]])
    features = decoder.window_features(tokens, plan, acoustic, semantic)
    cond, uncond = decoder.context(features[:1])
    positional_dim = decoder.config.positional_dim
    _compare_context(name, "dec_cond_w0", cond, archive["dec_cond_w0"], positional_dim)
    _compare_context(name, "dec_uncond_w0", uncond, archive["dec_uncond_w0"], positional_dim)
    _compare(name, "dec_quantized_feature_last_window", features[-1:], archive["dec_quantized_feature_last_window"], 1e-6)


def test_unet_forward(case):
    name, _, archive, decoder, _, _, _ = case
    x = torch.from_numpy(archive["dec_unet_x"])
    t = torch.from_numpy(archive["dec_unet_t"])
    ctx = torch.cat([torch.from_numpy(archive["dec_cond_w0"]), torch.from_numpy(archive["dec_uncond_w0"])])
    with torch.inference_mode():
        out = decoder.unet(torch.cat([x, x]), torch.cat([t, t]), encoder_hidden_states=ctx, return_dict=False)[0]
    _compare(name, "dec_unet_out_cond", out[:1], archive["dec_unet_out_cond"], 1e-4)
    _compare(name, "dec_unet_out_uncond", out[1:], archive["dec_unet_out_uncond"], 1e-4)


def test_latents(decoded):
    name, _, cap = decoded
    archive = recorded(name)
    _compare(name, "dec_latent", cap["latent"], archive["dec_latent"][:, 0], 1e-3)


def test_vae_mel(decoded):
    name, _, cap = decoded
    archive = recorded(name)
    _compare(name, "dec_vae_mel", cap["mel"], archive["dec_vae_mel"][:, 0], 1e-3)


def test_vocoder_wave(decoded):
    name, _, cap = decoded
    archive = recorded(name)
    expected = archive["dec_vocoder_wave"][:, 0, 0]
    _compare(name, "dec_vocoder_wave", cap["wave"], expected, 1e-3)
    for i, n in enumerate(cap["used"].tolist()):  # the audio decode keeps of each window, vocoded on its cut mel
        _compare(name, f"dec_vocoder_wave[{i}, :{n}]", cap["heard"][i, :n], expected[i, :n], 1e-3)


def test_output_wave(decoded):
    name, out, _ = decoded
    archive = recorded(name)
    expected = archive["dec_output_wave"][:, 0]
    assert out.lengths.tolist() == [expected.shape[-1]]
    _compare(name, "dec_output_wave", out.audio, expected, 1e-3)


def test_generator_reproduces_official_noise(case):
    """torch.Generator seeded like the official run draws the recorded dec_noise bit-exactly."""
    name, _, archive, decoder, _, _, _ = case
    expected = torch.from_numpy(archive["dec_noise"]).squeeze(2)
    drawn = decoder.draw_noise(expected.shape[0], expected.shape[1], torch.Generator().manual_seed(1234), "cpu")
    assert torch.equal(drawn, expected)


def test_converter_rejects_bad_checkpoints(case):
    """Unexpected, missing and mis-shaped official keys raise ValueError naming the key."""
    name, spec, _, decoder, _, _, _ = case
    official = {k: torch.zeros(()).expand(tuple(v["shape"])) for k, v in spec["decoder"].items()}
    assert any(k.startswith("model_ema.") for k in official) and ALLOWED_UNUSED
    bad = dict(official, **{"cond_stage_models.0.foo": torch.zeros(1)})
    with pytest.raises(ValueError, match="cond_stage_models.0.foo"):
        load_official_decoder(decoder, bad)
    key = "model.diffusion_model.out.2.bias"
    missing = {k: v for k, v in official.items() if k != key}
    with pytest.raises(ValueError, match="conv_out.bias"):
        load_official_decoder(decoder, missing)
    key = "first_stage_model.vocoder.conv_post.weight"
    shaped = dict(official, **{key: torch.zeros(3, 3)})
    with pytest.raises(ValueError, match="conv_post.weight"):
        load_official_decoder(decoder, shaped)
    no_scale = {k: v for k, v in official.items() if k != "scale_factor"}
    with pytest.raises(ValueError, match="scale_factor"):
        load_official_decoder(decoder, no_scale)
