"""The semantic (k-means) stage and the decoder stage on its output, with the tiny trained codec's
configs (tiny step counts, CPU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from codec.model import SemantiCodec
from codec.training.history import read_history
from codec.training.recipe import build_codec, load_codec_recipe_config, run_codec_recipe
from plumbing.config_file import ConfigError

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "recipes" / "codec" / "tiny_trained"
FAST = ["data.synthetic_examples=6", "data.synthetic_seconds=1.3", "kmeans.epochs=3", "kmeans.window_passes=2",
        "kmeans.feature_batch_size=4", "kmeans.num_clusters=8"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def semantic(out: Path, *overrides: str):
    return load_codec_recipe_config(CONFIGS / "semantic.yaml", [f"train.output_dir={out}", *FAST, *overrides])


def test_semantic_stage_fits_sets_and_saves_the_table(tmp_path):
    cfg = semantic(tmp_path / "a")
    initial = build_codec(cfg.codec).state_dict()
    result = run_codec_recipe(cfg)
    assert result.global_step == 3 and result.history[-1][1]["loss"] <= result.history[0][1]["loss"]
    codec = SemantiCodec.from_pretrained(result.codec_dir)
    table = np.load(tmp_path / "a" / "codebook_8_0.npy", allow_pickle=False)
    assert table.shape == (8, codec.config.feature_dim) and table.dtype == np.float32
    assert codec.semantic_vocab_size == 8 and codec.config.semantic_codebook_size == 8
    assert torch.equal(codec.semantic.centroids, torch.from_numpy(table))
    for k, v in codec.state_dict().items():  # everything but the table is the codec it started from
        if k != "semantic.centroids":
            assert torch.equal(v, initial[k]), k
    assert [r["step"] for r in read_history(tmp_path / "a")] == [1, 2, 3]
    # Deterministic from the seeds: a second run gives the same table; another k-means seed does not.
    again = run_codec_recipe(semantic(tmp_path / "b"))
    assert torch.equal(SemantiCodec.from_pretrained(again.codec_dir).semantic.centroids, codec.semantic.centroids)
    other = run_codec_recipe(semantic(tmp_path / "c", "kmeans.seed=1"))
    assert not torch.equal(SemantiCodec.from_pretrained(other.codec_dir).semantic.centroids, codec.semantic.centroids)


@pytest.mark.parametrize("override, key", [("kmeans.epochs=0", "epochs"), ("kmeans.num_clusters=1", "num_clusters"),
                                           ("kmeans.iters=3", "kmeans.iters"), ("stage=kmeans", "stage")])
def test_kmeans_section_errors_name_the_key(tmp_path, override, key):
    with pytest.raises(ConfigError, match=key):
        semantic(tmp_path, override)


def test_too_few_features_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="fewer than the 500 centroids"):
        run_codec_recipe(semantic(tmp_path, "kmeans.num_clusters=500"))


def test_decoder_stage_on_the_semantic_codec_keeps_loaded_parts_frozen(tmp_path):
    sem = run_codec_recipe(semantic(tmp_path / "semantic"))
    # Stand-ins for finished vae / vocoder stages: codecs of the same sizes with other weights.
    parts = {}
    for part, seed in (("vae", 1), ("vocoder", 2)):
        other = build_codec(load_codec_recipe_config(CONFIGS / "vae.yaml", [f"codec.init_seed={seed}"]).codec)
        other.decoder.scale_factor.fill_(0.25 * seed)
        other.save_pretrained(tmp_path / part / "codec")
        parts[part] = other.state_dict()
    cfg = load_codec_recipe_config(CONFIGS / "decoder.yaml", [
        f"codec.name={sem.codec_dir}", f"codec.vae_from={tmp_path / 'vae'}", f"codec.vocoder_from={tmp_path / 'vocoder'}",
        f"train.output_dir={tmp_path / 'decoder'}", "data.synthetic_examples=4", "data.synthetic_seconds=1.3",
        "train.batch_size=2", "train.max_steps=1", "train.warmup_steps=1"])
    result = run_codec_recipe(cfg)
    saved = SemantiCodec.from_pretrained(result.codec_dir).state_dict()
    start = SemantiCodec.from_pretrained(sem.codec_dir).state_dict()
    for k, v in saved.items():
        if k.startswith(("decoder.vae.", "decoder.scale_factor")):
            assert torch.equal(v, parts["vae"][k]), k
        elif k.startswith("decoder.vocoder."):
            assert torch.equal(v, parts["vocoder"][k]), k
        elif k.startswith(("audiomae.", "semantic.")):
            assert torch.equal(v, start[k]), k
    assert any(not torch.equal(v, start[k]) for k, v in saved.items() if k.startswith("decoder.unet."))
    history = read_history(tmp_path / "decoder")
    assert [r["step"] for r in history] == [1] and history[0]["wall_s"] > 0 and "loss" in history[0]


def test_folder_codec_checks_token_rate_and_sizes(tmp_path):
    sem = run_codec_recipe(semantic(tmp_path / "semantic", "kmeans.epochs=1"))
    base = [f"codec.name={sem.codec_dir}", "codec.vae_from=null", "codec.vocoder_from=null"]
    assert build_codec(load_codec_recipe_config(CONFIGS / "decoder.yaml", base).codec).config.token_rate == 50
    bare = load_codec_recipe_config(CONFIGS / "decoder.yaml", [*base, "codec.tiny_sizes={}"]).codec
    assert not bare.tiny_sizes and build_codec(bare).semantic_vocab_size == 8  # sizes from the folder alone
    with pytest.raises(ValueError, match=r"codec\.token_rate: 50"):
        build_codec(load_codec_recipe_config(CONFIGS / "decoder.yaml", [*base, "codec.token_rate=100"]).codec)
    with pytest.raises(ValueError, match="latent_time: 16 in the config but 32 in the folder"):
        build_codec(load_codec_recipe_config(CONFIGS / "decoder.yaml", [*base, "codec.tiny_sizes.latent_time=16"]).codec)


def test_refine_stages_go_on_from_the_earlier_stages(tmp_path):
    """decoder_refine starts from every weight of the decoder stage's codec; vocoder_refine trains
    only the vocoder, inside that codec with the vocoder stage's vocoder put in; decoder_unet trains
    only the UNet of decoder_refine's codec, so its tokens stay the same (the script's chain)."""
    from codec.training.export import export_codec

    small = ["data.synthetic_examples=4", "data.synthetic_seconds=1.3", "train.batch_size=2", "train.max_steps=1"]
    sem = run_codec_recipe(semantic(tmp_path / "semantic", "kmeans.epochs=1"))
    dec = run_codec_recipe(load_codec_recipe_config(CONFIGS / "decoder.yaml", [
        f"codec.name={sem.codec_dir}", "codec.vae_from=null", f"train.output_dir={tmp_path / 'decoder'}", *small,
        "train.warmup_steps=1"]))
    cfg = load_codec_recipe_config(CONFIGS / "decoder_refine.yaml", [
        f"codec.name={dec.codec_dir}", f"train.output_dir={tmp_path / 'decoder_refine'}", *small])
    assert cfg.data.synthetic_notes == (48, 86)
    ref = run_codec_recipe(cfg)
    before = SemantiCodec.from_pretrained(dec.codec_dir).state_dict()
    after = SemantiCodec.from_pretrained(ref.codec_dir).state_dict()
    unet = [k for k in after if k.startswith("decoder.unet.")]
    assert any(not torch.equal(after[k], before[k]) for k in unet)
    assert max(float((after[k] - before[k]).abs().max()) for k in unet) < 1e-3  # one warm-up step away
    for k in after:
        if k.startswith(("audiomae.", "semantic.", "decoder.vae.", "decoder.scale_factor", "decoder.vocoder.")):
            assert torch.equal(after[k], before[k]), k

    voc = run_codec_recipe(load_codec_recipe_config(CONFIGS / "vocoder.yaml", [
        f"train.output_dir={tmp_path / 'vocoder'}", *small]))
    joined = export_codec(ref.codec_dir, tmp_path / "joined", dtype="float32", vocoder_from=voc.codec_dir)
    last = run_codec_recipe(load_codec_recipe_config(CONFIGS / "vocoder_refine.yaml", [
        f"codec.name={joined}", f"train.output_dir={tmp_path / 'vocoder_refine'}", "vocoder.decoded_steps=2", *small]))
    start = SemantiCodec.from_pretrained(joined).state_dict()
    final = SemantiCodec.from_pretrained(last.codec_dir).state_dict()
    assert final.keys() == start.keys()
    changed = {k for k in final if not torch.equal(final[k], start[k])}
    assert changed and all(k.startswith("decoder.vocoder.") for k in changed)
    with pytest.raises(ConfigError, match=r"vocoder\.input_mel.*'audio', 'decoded'"):
        load_codec_recipe_config(CONFIGS / "vocoder_refine.yaml", ["vocoder.input_mel=vae"])

    cfg = load_codec_recipe_config(CONFIGS / "decoder_unet.yaml", [
        f"codec.name={ref.codec_dir}", f"train.output_dir={tmp_path / 'decoder_unet'}", *small, "train.warmup_steps=1"])
    assert not cfg.objective.train_encoder and cfg.train.partial_windows > 0 and cfg.data.synthetic_peak_range
    unet_only = SemantiCodec.from_pretrained(run_codec_recipe(cfg).codec_dir).state_dict()
    changed = {k for k in unet_only if not torch.equal(unet_only[k], after[k])}
    assert changed and all(k.startswith("decoder.unet.") for k in changed)
