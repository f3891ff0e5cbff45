"""Training objective of the acoustic encoder + diffusion decoder (tiny config, random weights)."""

from __future__ import annotations

import pytest
import torch

from codec.config import SemantiCodecConfig
from codec.mel import LogMelFrontEnd, slaney_mel_filters
from codec.model import SemantiCodec
from codec.training.losses import CodecLosses, CodecTrainingConfig, CodecTrainingStep, diffuse
from codec.training.vq import EMAVectorQuantizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_config(**overrides) -> SemantiCodecConfig:
    sizes = dict(segment_frames=128, latent_time=32, unet_block_channels=(32, 32), acoustic_codebook_size=16)
    sizes.update(overrides)
    return SemantiCodecConfig.tiny(**sizes)


def make_step(seed: int = 0, **train) -> CodecTrainingStep:
    torch.manual_seed(seed)
    codec = SemantiCodec(tiny_config(), with_decoder=True)
    return CodecTrainingStep(codec, CodecTrainingConfig(**train))


def clips(cfg: SemantiCodecConfig, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(cfg.segment_samples) / cfg.sample_rate
    tone = torch.stack([torch.sin(2 * torch.pi * 440 * t), torch.sin(2 * torch.pi * 1300 * t)])
    return 0.3 * tone + 0.05 * torch.randn(2, cfg.segment_samples, generator=g)


# ----- mel front end ------------------------------------------------------------------------
def test_mel_shape_and_filters():
    cfg = tiny_config()
    mel = LogMelFrontEnd(cfg)(clips(cfg)[:, :15000])  # shorter input is zero-padded
    assert mel.shape == (2, 1, cfg.segment_frames, cfg.vae_mel_bins)
    assert torch.isfinite(mel).all() and mel.min() >= torch.log(torch.tensor(1e-5)) - 1e-6
    filters = slaney_mel_filters(64, 1024, 16000, 0.0, 8000.0)
    assert filters.shape == (64, 513) and (filters >= 0).all() and (filters.sum(-1) > 0).all()


def test_official_mel_gives_1024_frames_per_window():
    cfg = SemantiCodecConfig.tiny()
    assert LogMelFrontEnd(cfg)(torch.zeros(1, cfg.segment_samples)).shape == (1, 1, 1024, 64)


# ----- diffusion target -----------------------------------------------------------------------
def test_diffuse_matches_diffusers_ddpm():
    from diffusers import DDPMScheduler

    from codec.sampling import official_alphas_cumprod

    cfg = tiny_config()
    sched = DDPMScheduler(num_train_timesteps=1000, beta_start=cfg.beta_start, beta_end=cfg.beta_end,
                          beta_schedule="scaled_linear", prediction_type="v_prediction")
    x0, noise = torch.randn(3, 8, 4, 4), torch.randn(3, 8, 4, 4)
    t = torch.tensor([0, 500, 999])
    x_t, v = diffuse(x0, noise, t, official_alphas_cumprod(cfg))
    torch.testing.assert_close(x_t, sched.add_noise(x0, noise, t), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(v, sched.get_velocity(x0, noise, t), atol=1e-5, rtol=1e-5)


# ----- vector quantiser -----------------------------------------------------------------------
def test_straight_through_forward_is_codebook_rows_and_gradient_is_identity():
    vq = EMAVectorQuantizer(8, 4).eval()
    codebook = torch.randn(8, 4)
    x = torch.randn(2, 5, 4, requires_grad=True)
    out = vq(x, codebook)
    assert torch.equal(out.quantized.detach(), codebook[out.ids])
    assert torch.equal(out.ids, torch.cdist(x.detach().reshape(-1, 4), codebook).argmin(-1).reshape(2, 5))
    out.quantized.sum().backward()
    torch.testing.assert_close(x.grad, torch.ones_like(x))


def test_ema_moves_used_codes_and_eval_leaves_codebook():
    torch.manual_seed(0)
    codebook = torch.randn(8, 4)
    x = codebook[:2].repeat(3, 1).reshape(1, 6, 4) + 0.5  # assigned to codes 0 and 1 (shifted)
    vq = EMAVectorQuantizer(8, 4, decay=0.9, dead_code_patience=0)
    before = codebook.clone()
    vq.eval()(x, codebook)
    assert torch.equal(codebook, before)
    out = vq.train()(x, codebook)
    assert set(out.ids.unique().tolist()) == {0, 1}
    target = before[:2] + 0.5
    assert ((codebook[:2] - target).norm(dim=-1) < (before[:2] - target).norm(dim=-1)).all()
    assert torch.allclose(codebook[2:], before[2:], atol=1e-3)  # unused codes barely move
    assert vq.cluster_size[0] > vq.cluster_size[2]


def test_commitment_ignores_masked_frames():
    vq = EMAVectorQuantizer(4, 2).eval()
    codebook = torch.zeros(4, 2)
    x = torch.tensor([[[1.0, 1.0], [100.0, 100.0]]])
    out = vq(x, codebook, torch.tensor([[True, False]]))
    torch.testing.assert_close(out.commitment, torch.tensor(1.0))


def test_dead_codes_are_reseeded_from_encoder_outputs():
    codebook = torch.randn(8, 4)
    x = codebook[:1].expand(1, 6, 4).clone()
    vq = EMAVectorQuantizer(8, 4, dead_code_patience=2).train()
    assert vq(x, codebook).reseeded == 0
    out = vq(x, codebook)
    assert out.reseeded == 7
    torch.testing.assert_close(codebook[1:], x[0, :1].expand(7, 4))  # every re-seed is a current output
    assert (vq.unused_steps == 0).all()


# ----- the full step ----------------------------------------------------------------------------
def test_step_losses_are_finite_scalars():
    step = make_step()
    cfg = step.codec.config
    out = step(clips(cfg)[:, :15000], torch.tensor([15000, 9000]))
    assert isinstance(out, CodecLosses)
    for loss in (out.total, out.diffusion, out.commitment):
        assert loss.dim() == 0 and torch.isfinite(loss)
    torch.testing.assert_close(out.total, out.diffusion + out.commitment)
    assert 0 < out.codebook_usage <= 1 and out.codebook_perplexity >= 1
    assert set(out.as_dict()) >= {"loss", "diffusion", "commitment", "codebook_usage"}


def test_gradients_reach_encoder_and_unet_only():
    step = make_step()
    out = step(clips(step.codec.config))
    out.total.backward()
    codec = step.codec
    for module in (codec.acoustic.lstm, codec.acoustic.proj, codec.decoder.unet):
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    for module in (codec.audiomae, codec.decoder.vae, codec.decoder.vocoder):
        assert all(p.grad is None and not p.requires_grad for p in module.parameters())
    assert not codec.semantic.centroids.requires_grad and codec.semantic.centroids.grad is None
    assert {id(p) for p in step.trainable_parameters()} == {
        id(p) for m in (codec.acoustic, codec.decoder.unet) for p in m.parameters()
    }


def test_eval_mode_step_leaves_codebook_and_uncond_drop():
    step = make_step(p_uncond=1.0).eval()
    before = step.codec.acoustic.codebook.clone()
    out = step(clips(step.codec.config))
    assert torch.equal(step.codec.acoustic.codebook, before)
    assert torch.isfinite(out.total)


def test_vq_distances_and_codebook_stay_fp32_under_autocast():
    codebook = torch.randn(8, 4)
    x = torch.randn(2, 5, 4).bfloat16()
    vq = EMAVectorQuantizer(8, 4).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = vq(x, codebook)
    assert out.quantized.dtype == torch.float32 and out.commitment.dtype == torch.float32
    assert codebook.dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="oneDNN has no bf16 LSTM on many CPUs; run on CUDA")
def test_step_works_under_autocast():
    step = make_step().cuda()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = step(clips(step.codec.config).cuda(), generator=torch.Generator("cuda").manual_seed(0))
    assert out.total.dtype == torch.float32 and torch.isfinite(out.total)
    out.total.backward()
    assert step.codec.acoustic.codebook.dtype == torch.float32


def test_a_few_steps_overfit_a_fixed_batch():
    # The posterior mode gives a fixed target, so the loss can only fall by fitting it.
    step = make_step(p_uncond=0.0, dead_code_patience=0, sample_posterior=False)
    waves = clips(step.codec.config)
    opt = torch.optim.Adam(step.trainable_parameters(), lr=3e-3)

    def loss(seed: int) -> float:
        with torch.no_grad():
            return float(step(waves, generator=torch.Generator().manual_seed(seed)).diffusion)

    step.eval()
    start = sum(loss(s) for s in range(3))
    step.train()
    for i in range(25):
        opt.zero_grad()
        step(waves, generator=torch.Generator().manual_seed(100 + i)).total.backward()
        opt.step()
    step.eval()
    assert sum(loss(s) for s in range(3)) < 0.6 * start


def test_frozen_encoder_trains_the_unet_alone():
    # train_encoder=False: the codes keep their meaning (encoder, codebook and EMA state fixed)
    step = make_step(p_uncond=0.0, train_encoder=False)
    waves = clips(step.codec.config)
    trainable = list(step.trainable_parameters())
    assert {id(p) for p in trainable} == {id(p) for p in step.codec.decoder.unet.parameters()}
    assert not any(p.requires_grad for p in step.codec.acoustic.parameters())
    before = {k: v.clone() for k, v in step.codec.acoustic.state_dict().items()}
    quantizer_before = {k: v.clone() for k, v in step.quantizer.state_dict().items()}
    unet_before = [p.detach().clone() for p in trainable]
    opt = torch.optim.Adam(trainable, lr=1e-3)
    step.train()
    for i in range(3):
        opt.zero_grad()
        out = step(waves, generator=torch.Generator().manual_seed(i))
        assert torch.equal(out.total, out.diffusion)  # no commitment term: nothing could follow it
        out.total.backward()
        opt.step()
    for k, v in step.codec.acoustic.state_dict().items():
        assert torch.equal(v, before[k]), k
    for k, v in step.quantizer.state_dict().items():
        assert torch.equal(v, quantizer_before[k]), k
    assert any(not torch.equal(p, q) for p, q in zip(trainable, unet_before))


def test_rejects_bad_input():
    step = make_step()
    cfg = step.codec.config
    with pytest.raises(ValueError, match="at most"):
        step(torch.zeros(1, cfg.segment_samples + 1))
    with pytest.raises(ValueError, match="NaN"):
        step(torch.full((1, 1000), float("nan")))
    with pytest.raises(ValueError, match="lengths"):
        step(torch.zeros(2, 2000), torch.tensor([2000, 3000]))
    with pytest.raises(ValueError, match="decoder"):
        CodecTrainingStep(SemantiCodec(tiny_config()))
