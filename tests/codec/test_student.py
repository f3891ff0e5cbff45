"""The distilled decoder (codec.student): the "distilled" sampler, its errors, and the student's file
(save_pretrained / from_pretrained / export-codec), on a tiny random codec (CPU)."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open

from codec.model import SemantiCodec
from codec.sampling import DecodeSettings, num_noise_draws, num_sampler_steps
from codec.student import STUDENT_NAME, DistilledStudent

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIZES = dict(segment_frames=128, latent_time=32, unet_block_channels=(32, 32), acoustic_codebook_size=16)


def tiny_codec(with_student: bool = True) -> SemantiCodec:
    codec = SemantiCodec.tiny_random(100, **SIZES)
    if with_student:
        torch.manual_seed(3)
        student = DistilledStudent.from_teacher(codec.decoder, guidance_scale=codec.config.cfg_scale)
        for p in student.parameters():  # not the teacher's weights: a save must keep them apart
            p.data.add_(0.01 * torch.randn_like(p))
        codec.decoder.student = student.requires_grad_(False).eval()
    return codec


@pytest.fixture(scope="module")
def tokens() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.stack([torch.randint(0, 64, (150,), generator=g), torch.randint(0, 16, (150,), generator=g)], -1)[None]


def test_settings_and_counts():
    settings = DecodeSettings(sampler="distilled", steps=4)
    assert settings.steps == 4 and num_sampler_steps("distilled", 4) == 4 and num_noise_draws("distilled", 4) == 4
    with pytest.raises(ValueError, match="eta"):
        DecodeSettings(sampler="distilled", steps=4, eta=1.0)


def test_a_codec_without_a_student_says_how_to_get_one(tokens):
    codec = tiny_codec(with_student=False)
    with pytest.raises(ValueError, match="no(ne)?.*distill stage"):
        codec.decode(tokens, settings=DecodeSettings(sampler="distilled", steps=4))


def test_distilled_decode_runs_the_trained_counts_only(tokens):
    codec = tiny_codec()
    calls = []
    hook = codec.decoder.student.unet.register_forward_hook(lambda m, a, o: calls.append(a[0].shape[0]))
    teacher = []
    hook2 = codec.decoder.unet.register_forward_hook(lambda m, a, o: teacher.append(1))
    try:
        for k in (1, 2, 4):
            calls.clear()
            out = codec.decode(tokens, settings=DecodeSettings(sampler="distilled", steps=k),
                               generator=torch.Generator().manual_seed(0))
            assert out.audio.shape == (1, codec.config.num_samples(150)) and torch.isfinite(out.audio).all()
            windows = len(codec.decoder.plan_windows([150]))
            assert calls == [windows] * k  # one pass per step over all windows: no unconditional half
    finally:
        hook.remove()
        hook2.remove()
    assert not teacher
    with pytest.raises(ValueError, match=r"trained for steps \[1, 2, 4\], not steps=3"):
        codec.decode(tokens, settings=DecodeSettings(sampler="distilled", steps=3))
    with pytest.raises(ValueError, match="guidance scale 2"):
        codec.decode(tokens, settings=DecodeSettings(sampler="distilled", steps=4, cfg_scale=3.0))


def test_distilled_decode_depends_on_the_noise_window_by_window(tokens):
    codec = tiny_codec()
    settings = DecodeSettings(sampler="distilled", steps=2)

    def latents(**kwargs):
        return codec.decoder.decode_latents(tokens, codec.acoustic.codebook, codec.semantic.centroids,
                                            settings=settings, **kwargs)[0]

    a = latents(generator=torch.Generator().manual_seed(5), batch_size=1)
    b = latents(generator=torch.Generator().manual_seed(5), batch_size=8)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    noise = codec.decoder.draw_noise(a.shape[0], 2, torch.Generator().manual_seed(5), "cpu")
    torch.testing.assert_close(latents(noise=noise), a, atol=1e-5, rtol=1e-5)
    other = noise.clone()
    other[:, 1] = torch.randn(other[:, 1].shape, generator=torch.Generator().manual_seed(9))
    assert (latents(noise=other) - a).abs().max() > 1e-3  # the re-noising draw before step 2 is used


def test_the_student_is_saved_in_its_own_file_and_loaded_back(tmp_path, tokens):
    codec = tiny_codec()
    codec.save_pretrained(tmp_path / "c")
    with safe_open(str(tmp_path / "c" / "model.safetensors"), framework="pt") as f:
        assert not [k for k in f.keys() if "student" in k]
    with safe_open(str(tmp_path / "c" / STUDENT_NAME), framework="pt") as f:
        meta = f.metadata()
    assert meta["method"] == "latent-consistency-distillation" and meta["step_counts"] == "[1, 2, 4]"
    loaded = SemantiCodec.from_pretrained(tmp_path / "c")
    for k, v in codec.decoder.student.unet.state_dict().items():
        assert torch.equal(v, loaded.decoder.student.unet.state_dict()[k]), k
    settings = DecodeSettings(sampler="distilled", steps=4)
    a = codec.decode(tokens, settings=settings, generator=torch.Generator().manual_seed(2)).audio
    b = loaded.decode(tokens, settings=settings, generator=torch.Generator().manual_seed(2)).audio
    torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
    # The teacher's decode is untouched by a student beside it.
    plain = tiny_codec(with_student=False)
    ddim = DecodeSettings(steps=3)
    torch.testing.assert_close(plain.decode(tokens, settings=ddim, generator=torch.Generator().manual_seed(2)).audio,
                               loaded.decode(tokens, settings=ddim, generator=torch.Generator().manual_seed(2)).audio)
    # Saving a codec without a student into the folder removes the old student file.
    plain.save_pretrained(tmp_path / "c")
    assert not (tmp_path / "c" / STUDENT_NAME).exists()
    assert SemantiCodec.from_pretrained(tmp_path / "c").decoder.student is None


def test_export_keeps_the_student_in_half_precision(tmp_path):
    from codec.training.export import export_codec

    tiny_codec().save_pretrained(tmp_path / "c")
    out = export_codec(tmp_path / "c", tmp_path / "e")
    with safe_open(str(out / STUDENT_NAME), framework="pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}
    assert "Distilled decoder" in (out / "TRAINING.md").read_text()
    assert SemantiCodec.from_pretrained(out).decoder.student.step_counts == (1, 2, 4)


def test_a_broken_student_file_is_a_clear_error(tmp_path):
    tiny_codec().save_pretrained(tmp_path / "c")
    (tmp_path / "c" / STUDENT_NAME).write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="could not read the distilled decoder.*delete the file"):
        SemantiCodec.from_pretrained(tmp_path / "c")


def test_timesteps_follow_the_teacher_grid():
    student = tiny_codec().decoder.student
    assert student.grid()[:2] == [1, 21] and student.grid()[-1] == 981
    assert student.timesteps(1) == [981]
    assert student.timesteps(2) == [981, 481]
    assert student.timesteps(4) == [981, 721, 481, 221]


def test_the_embedded_tiny_codec_ships_a_small_student_that_keeps_pitch():
    from codec.checkpoints import embedded_codec_folder
    from codec.eval.metrics import dominant_frequency
    from codec.eval.quality import held_out_tones

    path = embedded_codec_folder("tiny") / STUDENT_NAME
    assert path.stat().st_size < 2_000_000
    with safe_open(str(path), framework="pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}
    codec = SemantiCodec.from_pretrained("tiny")
    assert codec.decoder.student.step_counts == (1, 2, 4) and codec.decoder.student.guidance_scale == 2.0
    waves, freqs = held_out_tones(0, 16000, 1.0, seed=99, frequencies=[300.0, 600.0], peak=0.45)
    enc = codec.encode(list(waves), 16000)
    out = codec.decode(enc, settings=DecodeSettings(sampler="distilled", steps=4), generator=torch.Generator().manual_seed(3))
    for i, f in enumerate(freqs):
        assert abs(dominant_frequency(out.audio[i, 4000:12000], 16000) - f) <= 0.03 * f


def test_the_gate_compares_the_student_with_the_teacher_on_the_same_tokens():
    from codec.eval.distilled import compare_distilled, gate, markdown_table

    codec = tiny_codec()
    rows = compare_distilled(codec, frequencies=(300.0, 500.0), peaks=(0.5,), noise_seeds=(1,), step_counts=(1, 4))
    assert [r.decoder for r in rows] == ["teacher: DDIM 50, guidance", "teacher, other noise", "student: 1 step",
                                         "student: 4 steps"]
    assert [r.unet_passes for r in rows] == [100, 100, 1, 4] and all(r.decodes == 2 for r in rows)
    assert rows[0].latent_to_teacher == 0.0 and rows[0].mel_to_teacher == 0.0
    assert all(r.latent_to_teacher > 0 for r in rows[1:])  # other noise, other decoder
    result = gate(rows)
    assert result["speedup"] == pytest.approx(rows[0].seconds / rows[3].seconds)
    assert "| student: 4 steps | 4 |" in markdown_table(rows)
    with pytest.raises(ValueError, match="distill stage"):
        compare_distilled(tiny_codec(with_student=False))


def test_the_gate_adds_the_student_with_its_decoder_in_another_precision():
    from codec.eval.distilled import compare_distilled

    codec = tiny_codec()
    before = {k: v.clone() for k, v in codec.decoder.state_dict().items()}
    rows = compare_distilled(codec, frequencies=(400.0,), peaks=(0.5,), noise_seeds=(1,), step_counts=(1, 2),
                             decoder_dtypes=("bfloat16",))
    assert [r.decoder for r in rows][-2:] == ["student: 2 steps", "student: 2 steps, bfloat16 decoder"]
    fp32, bf16 = rows[-2], rows[-1]
    assert bf16.unet_passes == 2 and bf16.decodes == 1
    assert 0 < abs(bf16.latent_to_teacher - fp32.latent_to_teacher) < 0.1  # the same decode, rounded differently
    after = codec.decoder.state_dict()  # the codec itself stays in float32, weights untouched
    assert all(after[k].dtype == v.dtype and torch.equal(after[k], v) for k, v in before.items())
    with pytest.raises(ValueError, match="not a torch dtype"):
        compare_distilled(codec, frequencies=(400.0,), peaks=(0.5,), noise_seeds=(1,), decoder_dtypes=("bf16",))


def test_set_dtype_keeps_the_vocoder_in_float32_and_refuses_other_dtypes():
    decoder = tiny_codec().decoder
    assert decoder.set_dtype(torch.bfloat16) is decoder
    dtypes = {name: {p.dtype for p in getattr(decoder, name).parameters()} for name in ("unet", "student", "vae", "vocoder")}
    assert dtypes == {"unet": {torch.bfloat16}, "student": {torch.bfloat16}, "vae": {torch.bfloat16},
                      "vocoder": {torch.float32}}
    with pytest.raises(ValueError, match="dtype must be torch.float32, torch.bfloat16 or torch.float16, got torch.int8"):
        decoder.set_dtype(torch.int8)
