"""Training at scale on the tiny CPU recipe: checkpoints that plain transformers opens, the eval
split with semantic / acoustic losses, throughput and MFU logs, gradient checkpointing, length
grouping, and the FSDP / DeepSpeed accelerate configs (validated: FSDP needs GPUs)."""

import json
from pathlib import Path

import pytest
import torch
import yaml

from semantilm.models.hf_tokenizer import audio_token_names
from semantilm.models.lm import build_lm, load_lm
from semantilm.training.recipes import run_recipe
from semantilm.training.trainer import ThroughputCallback, TrainConfig, peak_device_flops, train_lm
from tests.semantilm.training.conftest import token_dataset
from tests.semantilm.training.test_recipes import ROOT, tiny_config

ACCELERATE = ROOT / "configs" / "accelerate"


def test_recipe_checkpoint_opens_with_plain_transformers(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, pipeline

    out = tmp_path / "t2a"
    run_recipe(tiny_config("text_to_audio", out, "train.max_steps=2", "train.save_steps=2",
                           "data.synthetic_examples=6"), task="text_to_audio")
    for folder in (out, out / "checkpoint-2"):
        lm = load_lm(folder)
        hf_tok = AutoTokenizer.from_pretrained(folder)
        hf_model = AutoModelForCausalLM.from_pretrained(folder).eval()
        layout = lm.layout
        assert len(hf_tok) == layout.vocab_size and hf_tok.pad_token_id == layout.pad_id
        audio = torch.tensor([[0, 1], [5, 7], [layout.semantic_vocab_size - 1, layout.acoustic_vocab_size - 1]])
        expected = lm.tokenizer.text_to_audio_example("a rising sweep at 440 hz", audio, end=False).input_ids
        names = audio_token_names(layout)
        text = "a rising sweep at 440 hz<|audio_start|>" + "".join(names[i - layout.semantic_offset]
                                                                   for i in expected[-6:])
        assert hf_tok(text)["input_ids"] == expected
        # The recipe's caption tokenizer folds case (model.lowercase_captions), here and in tokenizer.json.
        assert hf_tok(text.replace("a rising sweep at 440 hz", "A Rising SWEEP at 440 Hz"))["input_ids"] == expected
        assert lm.tokenizer.encode_text("A Rising SWEEP") == lm.tokenizer.encode_text("a rising sweep")
        assert hf_tok.decode(expected[-6:]) == text.split("<|audio_start|>")[1]
        ids = torch.tensor([expected])
        with torch.no_grad():
            assert torch.equal(hf_model(ids).logits, lm.model.eval()(ids).logits)
        gen = GenerationConfig.from_pretrained(folder)
        assert gen.eos_token_id == layout.audio_end_id and gen.pad_token_id == layout.pad_id
    generator = pipeline("text-generation", model=str(out), device="cpu")
    result = generator("a rising sweep<|audio_start|>", max_new_tokens=4, do_sample=False)
    assert result[0]["generated_text"].startswith("a rising sweep")


def test_recipe_eval_split_gradient_checkpointing_and_length_grouping(tmp_path):
    out = tmp_path / "eval"
    result = run_recipe(tiny_config(
        "text_to_audio", out, "train.max_steps=2", "train.save_steps=2", "train.eval_steps=2",
        "data.synthetic_examples=8", "data.eval_fraction=0.25", "train.gradient_checkpointing=true",
        "train.group_by_length=true", "train.throughput_log_step=2", "train.logging_steps=5"))
    assert result.global_step == 2 and result.num_examples == 6
    (evaluation,) = result.evaluations
    assert evaluation["step"] == 2
    for key in ("eval_loss", "eval_loss_semantic", "eval_loss_acoustic", "eval_loss_tokens"):
        assert 0 < evaluation[key] < 20, key
    history = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())["log_history"]
    logged = [e for e in history if "tokens_per_s" in e]
    assert logged and logged[0]["step"] == 2 and logged[0]["tokens_per_s"] > 0  # the early log
    assert all("mfu" not in e for e in logged)  # CPU: MFU n/a


def test_train_lm_throughput_and_mfu(tmp_path, sp_tok, fake_codec, captions):  # noqa: F811
    data = token_dataset(fake_codec, captions, 4, tmp_path / "tokens")
    model = build_lm(sp_tok.layout, ROOT / "configs" / "lm" / "tiny.yaml", seed=0)
    config = TrainConfig(output_dir=str(tmp_path / "run"), max_steps=3, batch_size=2, logging_steps=1,
                         save_steps=3, disable_tqdm=True, peak_tflops=1.0, throughput_log_step=2)
    trainer = train_lm(model, sp_tok, data, config, save_final=False)
    rates = [e for e in trainer.state.log_history if "tokens_per_s" in e]
    assert [e["step"] for e in rates] == [2, 3]
    n = sum(p.numel() for p in model.parameters())
    assert rates[-1]["tokens_per_s"] > 0
    assert rates[-1]["mfu"] == pytest.approx(6 * n * rates[-1]["tokens_per_s"] / 1e12, rel=1e-2, abs=1e-4)
    assert trainer.throughput.last["mfu"] is not None


def test_peak_flops_and_callback_without_peak():
    assert peak_device_flops(2.5) == 2.5e12
    if not torch.cuda.is_available():
        assert peak_device_flops() is None
    cb = ThroughputCallback(num_params=10, peak_flops=None)

    class State:
        global_step, num_input_tokens_seen, log_history, is_world_process_zero = 1, 0, [], True

    class Control:
        should_log = False

    state, control = State(), Control()
    cb.on_step_end(state, control)
    state.global_step, state.num_input_tokens_seen = 2, 100
    logs = {"loss": 1.0}
    cb.on_log(state, logs)
    assert logs["tokens_per_s"] > 0 and "mfu" not in logs and cb.last["mfu"] is None


def test_train_config_new_fields_are_checked():
    with pytest.raises(ValueError, match="eval_steps"):
        TrainConfig(eval_steps=0)
    with pytest.raises(ValueError, match="peak_tflops"):
        TrainConfig(peak_tflops=-1.0)
    from semantilm.training.recipe_config import DataSection

    with pytest.raises(ValueError, match="eval_fraction"):
        DataSection(eval_fraction=1.0)


def test_fsdp_and_deepspeed_configs_pass_accelerate_validation():
    """FSDP under accelerate needs a GPU (its plugin refuses to start on a CPU, and without one
    the Trainer falls back to DDP), so the CPU suite checks the configs with accelerate's own
    loaders: the launcher's ClusterConfig and the FSDP plugin built from fsdp_config."""
    from accelerate.commands.config.config_args import ClusterConfig
    from accelerate.utils import FullyShardedDataParallelPlugin
    from torch.distributed.fsdp import ShardingStrategy, StateDictType

    from semantilm.tokens.layout import AudioTokenLayout

    for name, kind, stage in (("fsdp", "FSDP", None), ("deepspeed_zero2", "DEEPSPEED", 2),
                              ("deepspeed_zero3", "DEEPSPEED", 3)):
        text = (ACCELERATE / f"{name}.yaml").read_text()
        assert "accelerate launch --config_file configs/accelerate/" + name + ".yaml" in text
        cluster = ClusterConfig.from_yaml_file(str(ACCELERATE / f"{name}.yaml"))
        assert str(cluster.distributed_type).endswith(kind) and cluster.mixed_precision == "bf16"
        if stage:
            assert cluster.deepspeed_config["zero_stage"] == stage
    fsdp = yaml.safe_load((ACCELERATE / "fsdp.yaml").read_text())["fsdp_config"]
    assert fsdp["fsdp_state_dict_type"] == "SHARDED_STATE_DICT"
    plugin = FullyShardedDataParallelPlugin(
        fsdp_version=fsdp["fsdp_version"], reshard_after_forward=fsdp["fsdp_reshard_after_forward"],
        auto_wrap_policy=fsdp["fsdp_auto_wrap_policy"].lower(), backward_prefetch=fsdp["fsdp_backward_prefetch"],
        state_dict_type=fsdp["fsdp_state_dict_type"], use_orig_params=fsdp["fsdp_use_orig_params"],
        mixed_precision_policy="bf16", sync_module_states=False, cpu_ram_efficient_loading=False)
    assert plugin.reshard_after_forward == ShardingStrategy.FULL_SHARD
    assert plugin.state_dict_type == StateDictType.SHARDED_STATE_DICT
    assert plugin.mixed_precision_policy.param_dtype == torch.bfloat16
    layout = AudioTokenLayout(text_vocab_size=8, semantic_vocab_size=4, acoustic_vocab_size=4, frame_rate=50.0)
    model = build_lm(layout, ROOT / "configs" / "lm" / "tiny.yaml")
    plugin.set_auto_wrap_policy(model)  # by the decoder layer class the model names
    assert plugin.auto_wrap_policy is not None and plugin.transformer_cls_names_to_wrap == ["LlamaDecoderLayer"]
    assert Path(ACCELERATE / "1gpu.yaml").is_file()
