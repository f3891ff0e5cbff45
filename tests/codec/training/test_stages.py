"""VAE and vocoder training stages: losses, exact resume, latent scale, loading parts (tiny, CPU)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from codec.model import SemantiCodec
from codec.sampling import DecodeSettings
from codec.training.recipe import build_codec, load_codec_recipe_config, run_codec_recipe

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "recipes" / "codec"
SMALL_VOCODER = ["codec.tiny_sizes.vocoder_initial_channels=32", "codec.tiny_sizes.vocoder_resblock_kernels=[3]",
                 "codec.tiny_sizes.vocoder_resblock_dilations=[[1]]", "vocoder.discriminator_width=0.03",
                 "vocoder.periods=[2,3]", "vocoder.scales=2"]

SMALL_VAE = ["codec.tiny_sizes.vae_block_channels=[8,8,8]", "codec.tiny_sizes.vae_norm_groups=4"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def config(name: str, out: Path, *overrides: str):
    small = SMALL_VOCODER if name == "vocoder" else SMALL_VAE
    return load_codec_recipe_config(CONFIGS / f"tiny_{name}_cpu.yaml", [
        f"train.output_dir={out}", "data.synthetic_examples=4", "data.synthetic_seconds=1.2", "train.batch_size=2",
        "train.save_steps=100", "train.window_seconds=0.4", *small, *overrides])


def states_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k  # bit-exact: same ops, same order, one thread


@pytest.mark.parametrize("stage, optimizers", [("vae", 1), ("vocoder", 2)])
def test_resume_equals_uninterrupted(tmp_path, stage, optimizers):
    extra = ["vocoder.adversarial_start=1"] if stage == "vocoder" else []  # crosses the GAN switch-on
    straight = run_codec_recipe(config(stage, tmp_path / "a", "train.max_steps=3", *extra))
    # 4 clips, batch 2: 2 steps per epoch; stopping after step 1 makes the resumed run skip a
    # batch of epoch 0 and then cross into epoch 1.
    assert run_codec_recipe(config(stage, tmp_path / "b", "train.max_steps=1", *extra)).global_step == 1
    resumed = run_codec_recipe(config(stage, tmp_path / "b", "train.max_steps=3", *extra))
    assert [s for s, _ in resumed.history] == [2, 3]
    assert [logs for _, logs in resumed.history] == [logs for _, logs in straight.history[1:]]
    states_equal(SemantiCodec.from_pretrained(straight.codec_dir).state_dict(),
                 SemantiCodec.from_pretrained(resumed.codec_dir).state_dict())
    from safetensors.torch import load_file

    ckpt_a, ckpt_b = tmp_path / "a/checkpoints/checkpoint-3", tmp_path / "b/checkpoints/checkpoint-3"
    states_equal(load_file(ckpt_a / "model.safetensors"), load_file(ckpt_b / "model.safetensors"))  # + discriminators
    names = ["optimizer.bin"] + [f"optimizer_{i}.bin" for i in range(1, optimizers)]
    assert sorted(p.name for p in ckpt_a.glob("optimizer*.bin")) == names
    for name in names:
        sa = torch.load(ckpt_a / name, weights_only=False)["state"]
        sb = torch.load(ckpt_b / name, weights_only=False)["state"]
        assert sa and all(torch.equal(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"]) for i in sa)
    if stage == "vocoder":
        assert "adversarial" in straight.history[-1][1] and "adversarial" not in straight.history[0][1]


def test_vae_stage_trains_only_the_vae_and_sets_the_latent_scale(tmp_path):
    cfg = config("vae", tmp_path, "train.max_steps=2")
    initial = build_codec(cfg.codec).state_dict()
    result = run_codec_recipe(cfg)
    assert all(torch.isfinite(torch.tensor(logs["loss"])) and logs["kl"] > 0 for _, logs in result.history)
    trained = SemantiCodec.from_pretrained(result.codec_dir)
    state = trained.state_dict()
    for k, v in state.items():
        if k.startswith("decoder.vae."):
            continue
        if k == "decoder.scale_factor":
            assert float(v) != float(initial[k]) and float(v) > 0
        else:
            assert torch.equal(v, initial[k]), f"frozen {k} changed"
    assert any(not torch.equal(v, initial[k]) for k, v in state.items() if k.startswith("decoder.vae."))

    from codec.training.recipe import build_windows
    from codec.training.vae_stage import VAETrainingStep, latent_scale

    windows = build_windows(cfg.data, 6400, 400, 16000, cfg.train.seed)
    scale = latent_scale(VAETrainingStep(trained, cfg.vae), windows, cfg.vae.scale_windows)
    assert scale == pytest.approx(float(state["decoder.scale_factor"]), rel=1e-5)


def test_decoder_stage_takes_vae_and_vocoder_from_stage_outputs(tmp_path):
    vae = run_codec_recipe(config("vae", tmp_path / "vae", "train.max_steps=1"))
    voc = run_codec_recipe(config("vocoder", tmp_path / "voc", "train.max_steps=1"))
    sizes = [o for o in SMALL_VAE + SMALL_VOCODER if o.startswith("codec.")]
    dec = load_codec_recipe_config(CONFIGS / "tiny_vocoder_cpu.yaml", [
        "stage=decoder", f"codec.vae_from={tmp_path / 'vae'}", f"codec.vocoder_from={voc.codec_dir}", *sizes])
    codec = build_codec(dec.codec).state_dict()
    for source, prefix in ((vae.codec_dir, ("decoder.vae.", "decoder.scale_factor")), (voc.codec_dir, "decoder.vocoder.")):
        saved = SemantiCodec.from_pretrained(source).state_dict()
        assert all(torch.equal(v, codec[k]) for k, v in saved.items() if k.startswith(prefix))
    assert float(codec["decoder.scale_factor"]) != 1.0


def test_mismatched_part_is_a_clear_error(tmp_path):
    voc = run_codec_recipe(config("vocoder", tmp_path / "voc", "train.max_steps=1"))
    dec = load_codec_recipe_config(CONFIGS / "tiny_cpu.yaml", [f"codec.vocoder_from={tmp_path / 'voc'}"])
    with pytest.raises(ValueError, match=r"codec\.vocoder_from=.*(missing|mis-shaped).*tiny_sizes"):
        build_codec(dec.codec)
    assert voc.global_step == 1
    with pytest.raises(ValueError, match=r"codec\.vae_from=.*neither a save_pretrained"):
        build_codec(load_codec_recipe_config(CONFIGS / "tiny_cpu.yaml", [f"codec.vae_from={tmp_path / 'none'}"]).codec)


def test_discriminators_shapes_losses_and_width():
    from codec.training.discriminators import (
        HifiGanDiscriminator,
        discriminator_loss,
        feature_matching_loss,
        generator_adversarial_loss,
    )

    torch.manual_seed(0)
    small, full = HifiGanDiscriminator(width=0.0625), HifiGanDiscriminator()
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in full.parameters()) / 50
    real, fake = torch.randn(2, 3203), torch.randn(2, 3203, requires_grad=True)
    out_r, out_f = small(real), small(fake)
    assert len(out_r) == 5 + 3 and all(len(f) == 6 for _, f in out_r[:5]) and all(len(f) == 8 for _, f in out_r[5:])
    assert out_r[0][1][0].shape[-1] == 2 and out_r[4][1][0].shape[-1] == 11  # folded by period
    for loss in (discriminator_loss(out_r, out_f), generator_adversarial_loss(out_f), feature_matching_loss(out_r, out_f)):
        assert loss.dim() == 0 and torch.isfinite(loss)
    feature_matching_loss(out_r, out_f).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="wave"):
        small(torch.randn(2, 1, 100))


def test_stage_input_errors():
    from codec.training.vocoder_stage import VocoderTrainingStep

    cfg = config("vocoder", Path("unused"))
    step = VocoderTrainingStep(build_codec(cfg.codec), cfg.vocoder)
    with pytest.raises(ValueError, match="phase"):
        step(torch.zeros(1, 3200), phase="critic")
    with pytest.raises(ValueError, match="carry"):
        step(torch.zeros(1, 3200), phase="discriminator")
    with pytest.raises(ValueError, match="NaN"):
        step(torch.full((1, 3200), float("nan")))


def test_vocoder_stft_term_skips_silent_windows():
    """The multi-resolution STFT term is finite with a silent window in the batch, and trains."""
    from codec.training.vocoder_stage import VocoderTrainingStep

    cfg = config("vocoder", Path("unused"), "vocoder.stft_weight=2.0")
    step = VocoderTrainingStep(build_codec(cfg.codec), cfg.vocoder)
    waves = torch.zeros(2, 6400)
    waves[0] = 0.5 * torch.sin(2 * torch.pi * 300 * torch.arange(6400) / 16000)
    losses = step(waves)
    assert set(losses.parts) >= {"loss", "mel", "stft"}
    assert 0 < float(losses.parts["stft"]) < 10 and torch.isfinite(losses.total)
    losses.total.backward()
    grads = [p.grad for p in step.generator_parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    silent = step(torch.zeros(2, 6400))
    assert float(silent.parts["stft"]) == 0.0


def test_vocoder_mel_floor_makes_silence_cost_more_than_quiet_errors():
    """With mel_floor, a silent output costs more than the right tone with faint noise in every
    other bin, the opposite of the plain log-mel L1 (why tiny vocoders collapse to silence on tones)."""
    from codec.training.vocoder_stage import VocoderTrainingConfig, VocoderTrainingStep

    cfg = config("vocoder", Path("unused"))
    t = torch.arange(6400) / 16000
    tone = 0.5 * torch.sin(2 * torch.pi * 500 * t)[None]
    noisy = tone + 0.003 * torch.randn(tone.shape, generator=torch.Generator().manual_seed(0))  # -45 dB noise
    costs, frames = {}, tone.shape[1] // 160
    for floor in (0.0, 0.01):
        step = VocoderTrainingStep(build_codec(cfg.codec), VocoderTrainingConfig(mel_floor=floor))
        ref = step.mel(tone, frames).squeeze(1)

        def mel_cost(x, step=step, ref=ref, floor=floor):
            m = step.mel(x, frames).squeeze(1)
            if floor:
                return float(((m.exp() + floor).log() - (ref.exp() + floor).log()).abs().mean())
            return float((m - ref).abs().mean())

        costs[floor] = (mel_cost(torch.zeros_like(tone)), mel_cost(noisy))
        step(tone)  # the stage runs with the floor
    assert costs[0.0][0] < costs[0.0][1]  # plain L1: silence is cheaper
    assert costs[0.01][0] > costs[0.01][1]  # with the floor: silence is dearer
    with pytest.raises(ValueError, match="mel_floor"):
        VocoderTrainingConfig(mel_floor=-1.0)
    with pytest.raises(ValueError, match="stft_floor"):
        VocoderTrainingConfig(stft_floor=0.0)


def test_vocoder_loss_floors_fall_on_schedule():
    from codec.training.vocoder_stage import VocoderTrainingConfig

    cfg = VocoderTrainingConfig(mel_floor=0.01, floor_final_scale=1e-3, floor_decay_start=100, floor_decay_steps=300)
    assert [cfg.floor_scale(u) for u in (0, 100)] == [1.0, 1.0]
    assert cfg.floor_scale(250) == pytest.approx(10 ** -1.5) and cfg.floor_scale(400) == pytest.approx(1e-3)
    assert cfg.floor_scale(10_000) == pytest.approx(1e-3)
    assert VocoderTrainingConfig(mel_floor=0.01).floor_scale(10_000) == 1.0  # constant by default
    with pytest.raises(ValueError, match="floor_final_scale"):
        VocoderTrainingConfig(floor_final_scale=0.0)


def test_lr_decays_linearly_over_the_last_decay_steps(tmp_path):
    """warm-up, constant, then linear decay: the LR of the last decay_steps steps falls towards 0."""
    result = run_codec_recipe(config("vae", tmp_path / "run", "train.max_steps=4", "train.decay_steps=2",
                                     "train.warmup_steps=0", "train.logging_steps=1", "train.learning_rate=0.001"))
    assert [logs["lr"] for _, logs in result.history] == pytest.approx([1e-3, 1e-3, 5e-4, 0.0])
    with pytest.raises(ValueError, match="decay_steps"):
        config("vae", tmp_path / "bad", "train.decay_steps=-1")


def test_vocoder_can_learn_on_the_mel_the_decoder_gives_it():
    """input_mel="decoded": the vocoder trains on the very mel it gets when the codec decodes the
    window's tokens (same noise), while its targets stay the true audio and mel."""
    from codec.training.vocoder_stage import VocoderTrainingConfig, VocoderTrainingStep

    cfg = config("vocoder", Path("unused"))
    codec = build_codec(cfg.codec)
    step = VocoderTrainingStep(codec, VocoderTrainingConfig(input_mel="decoded", decoded_steps=3))
    wave = 0.5 * torch.sin(2 * torch.pi * 440 * torch.arange(6400) / 16000)[None]
    heard = []
    hook = codec.decoder.vocoder.register_forward_pre_hook(lambda module, args: heard.append(args[0].detach().clone()))
    try:
        losses = step(wave, generator=torch.Generator().manual_seed(3))
        losses.total.backward()
        codec.decode(codec.encode(wave[0]).tokens, settings=DecodeSettings(sampler="dpmsolver++", steps=3), generator=torch.Generator().manual_seed(3))
    finally:
        hook.remove()
    frames = wave.shape[1] // 160
    torch.testing.assert_close(heard[0], heard[1][:, :frames], atol=1e-5, rtol=1e-5)
    assert (heard[0] - step.mel(wave, frames).squeeze(1)).abs().mean() > 0.1  # not the true mel
    assert all(torch.isfinite(p.grad).all() for p in step.generator_parameters() if p.grad is not None)
    with pytest.raises(ValueError, match="input_mel"):
        VocoderTrainingConfig(input_mel="vae")
    with pytest.raises(ValueError, match="decoded_sampler"):
        VocoderTrainingConfig(decoded_sampler="euler_ancestral")
