import pytest
import torch

from semantilm.generation.generate import generate_audio
from semantilm.generation.settings import SamplingSettings
from semantilm.models.lm import LMConfig, build_lm, load_lm
from semantilm.training.trainer import TrainConfig, last_checkpoint, train_lm
from tests.semantilm.training.conftest import token_dataset


def test_overfits_two_captions_then_generates_each_exactly(tmp_path, sp_tok, fake_codec, captions):
    data = token_dataset(fake_codec, captions[:2], 2, tmp_path / "tokens")
    config = LMConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, max_position_embeddings=64)
    model = build_lm(sp_tok.layout, config, seed=0)
    cfg = TrainConfig(
        output_dir=str(tmp_path / "run"), max_steps=60, batch_size=2, learning_rate=1e-2, weight_decay=0.0,
        warmup_steps=5, lr_scheduler_type="constant_with_warmup", save_steps=1000, logging_steps=1000,
        caption_dropout=0.0, max_length=64, disable_tqdm=True,
    )
    trainer = train_lm(model, sp_tok, data, cfg)
    assert trainer.state.log_history[-1]["train_loss"] < 1.0
    loaded = load_lm(tmp_path / "run", codec=fake_codec)  # final save has layout + tokenizer
    greedy = SamplingSettings(seconds=0.3, do_sample=False, guidance_scale=1.0)
    out = generate_audio(loaded.model, loaded.tokenizer, fake_codec, captions[:2], sampling=greedy)
    for b in range(2):
        expected = torch.tensor([data[b]["semantic_ids"], data[b]["acoustic_ids"]]).T
        assert out.token_lengths[b] == expected.shape[0]  # the LM ended the clip itself
        assert torch.equal(out.tokens[b, : expected.shape[0]], expected)
    assert not torch.equal(out.tokens[0], out.tokens[1])


class StopAt:
    """Trainer callback that stops the run after ``step`` optimizer steps (an interruption)."""

    def __new__(cls, step):
        from transformers import TrainerCallback

        class _Stop(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if state.global_step >= step:
                    control.should_training_stop = True
                return control

        return _Stop()


def test_resume_gives_the_same_state_as_uninterrupted(tmp_path, sp_tok, fake_codec, captions):
    data = token_dataset(fake_codec, captions, 6, tmp_path / "tokens", seconds=0.04)
    tiny = LMConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, max_position_embeddings=64)

    def config(name):
        return TrainConfig(
            output_dir=str(tmp_path / name), max_steps=6, batch_size=2, learning_rate=1e-2, save_steps=3,
            logging_steps=1000, caption_dropout=0.5, max_length=64, disable_tqdm=True, warmup_steps=2,
        )

    full = train_lm(build_lm(sp_tok.layout, tiny, seed=0), sp_tok, data, config("full"), save_final=False).model
    train_lm(build_lm(sp_tok.layout, tiny, seed=0), sp_tok, data, config("cut"), callbacks=[StopAt(3)], save_final=False)
    ckpt = last_checkpoint(tmp_path / "cut")
    assert ckpt is not None and ckpt.endswith("checkpoint-3")
    assert (tmp_path / "cut" / "checkpoint-3" / "semantilm_config.json").is_file()
    other_init = build_lm(sp_tok.layout, tiny, seed=123)  # weights come from the checkpoint
    resumed = train_lm(other_init, sp_tok, data, config("cut"), resume_from_checkpoint=True, save_final=False).model
    for (name, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_train_config_and_input_errors(tmp_path, sp_tok, fake_codec):
    with pytest.raises(ValueError, match="max_steps"):
        TrainConfig(max_steps=0)
    from datasets import Dataset

    model = build_lm(sp_tok.layout, LMConfig(hidden_size=16, num_attention_heads=2), seed=0)
    with pytest.raises(ValueError, match="token columns"):
        train_lm(model, sp_tok, Dataset.from_dict({"x": [1]}), TrainConfig(output_dir=str(tmp_path)))
    with pytest.raises(ValueError, match="not a checkpoint folder"):
        train_lm(model, sp_tok, token_dataset(fake_codec, ["a"], 1, tmp_path / "tokens"), TrainConfig(output_dir=str(tmp_path)),
                 resume_from_checkpoint=str(tmp_path / "nope"))
