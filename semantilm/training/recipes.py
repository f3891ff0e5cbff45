"""The training recipes (text-to-audio, audio continuation) as one function of a ``RecipeConfig``.

``run_recipe`` is what ``recipes/<task>/train.py`` runs in every process of an
``accelerate launch`` and what ``semantilm train`` runs in-process. Training is
``semantilm.train_lm`` (``transformers.Trainer``): under ``accelerate launch`` it runs DDP with
no further code, each process on its own shard of every batch, and it resumes exactly.

Steps, in every process:

1. Every process loads the codec (encode only) and tokenises its shards of the corpus into the
   resumable token folder ``<output_dir>/tokens`` (the same path as ``semantilm tokenize``), then
   reads the whole folder. For a from-scratch LM the main process trains a sentencepiece model on
   the captions (``<output_dir>/text.model``) while the others wait, then read it back. The layout
   is rebuilt from the codec facts recorded in ``<output_dir>/codec.json``.
2. The LM is built from a size YAML, or loaded from a pretrained checkpoint (+ LoRA).
3. ``train_lm`` trains; every ``checkpoint-N`` holds the weights, the text tokenizer, the layout
   and ``semantilm_codec.json`` (the codec it decodes with), so any of them is a hub-format
   checkpoint (``semantilm.push_to_hub``).

A token folder written by ``semantilm tokenize`` can be given as ``data.dataset`` directly.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from semantilm.training.recipe_config import RecipeConfig, to_dict

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset

    from semantilm.tokens.tokenizer import AudioTextTokenizer

__all__ = [
    "RecipeResult",
    "run_recipe",
    "DataOrderRecorder",
    "CODEC_INFO_FILE",
    "RESOLVED_CONFIG_FILE",
]

logger = logging.getLogger(__name__)

CODEC_INFO_FILE = "codec.json"
RESOLVED_CONFIG_FILE = "recipe.yaml"
SENTENCEPIECE_MODEL = "text.model"
# A continuation LM has no text to learn; it still gets a (minimal) sentencepiece tokenizer so that
# its checkpoint has the same format and the same bos-prefixed prompts as every other.
_NO_CAPTIONS_TEXT = ["audio continuation", "audio"]


@dataclass
class RecipeResult:
    """What a recipe run did.

    output_dir:   the run folder (final model, ``checkpoint-N`` folders, tokens, logs).
    global_step:  optimizer steps done (over all runs, when resumed).
    losses:       (step, training loss) pairs the Trainer logged.
    num_examples: rows of the token dataset used for training (after data.on_too_long: drop).
    """

    output_dir: Path
    global_step: int
    losses: list[tuple[int, float]] = field(default_factory=list)
    num_examples: int = 0
    evaluations: list[dict[str, float]] = field(default_factory=list)  # eval_* metrics and step, per evaluation
    generation_metrics: dict[str, float] | None = None  # eval.generation: the generation_* numbers (main process)


class _RecordedCodec:
    """A codec's facts read back from ``codec.json``: enough for a layout and the token cache's
    check, no weights. Used by the processes that did not tokenise."""

    def __init__(self, info: dict[str, Any]):
        self.variant = info["variant"]
        self.sample_rate = info["sample_rate"]
        self.frame_rate = info["frame_rate"]
        self.semantic_vocab_size = info["semantic_vocab_size"]
        self.acoustic_vocab_size = info["acoustic_vocab_size"]
        config = info.get("config")
        if config is not None:
            self.config = type("RecordedConfig", (), {"to_dict": staticmethod(lambda: config)})()

    def encode(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(
            "the token cache is incomplete in a process that does not tokenise; the main process should "
            "have written it (is the output folder shared by all processes?)."
        )

    decode = encode


class DataOrderRecorder:
    """Wraps a collator; appends the ``example_id`` of every row this process collates to
    ``<directory>/rank-<k>.jsonl`` (one JSON list per batch). Batches the data loader prefetches
    and the ones a resumed run skips are recorded too."""

    def __init__(self, collator: Any, directory: str | os.PathLike, rank: int):
        self.collator = collator
        self.path = Path(directory) / f"rank-{rank}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, rows: list[dict[str, Any]]) -> Any:
        ids = [int(r["example_id"]) for r in rows]
        with self.path.open("a") as f:
            f.write(json.dumps(ids) + "\n")
        return self.collator(rows)


def _codec_device(setting: str, state: Any) -> str:
    if setting != "auto":
        return setting
    return str(state.device) if state.device.type != "cpu" else "cpu"


def _synthetic_config(config: RecipeConfig) -> Any:
    from codec.data import SyntheticSoundConfig

    d = config.data
    return SyntheticSoundConfig(num_examples=d.synthetic_examples, seconds=d.synthetic_seconds, seed=d.synthetic_seed)


def _tokenise(config: RecipeConfig, output_dir: Path, device: str, main: bool,
              loaded: Any = None) -> tuple[Dataset, dict[str, Any]]:
    """The token dataset and the codec facts that made it.

    ``data.dataset`` that is a token folder (``semantilm tokenize``) or an older ``save_to_disk`` token
    dataset is read as it is. Otherwise every process of the run loads the codec and tokenises its
    shards of the corpus into the token folder ``data.token_cache`` (default ``<output_dir>/tokens``,
    resumable), then every process reads the folder. ``loaded``: the codec of ``config.codec`` when
    the caller has it already.
    """
    from semantilm.data.token_dataset import is_token_folder, load_token_dataset
    from semantilm.training.token_codec import token_record

    d = config.data
    caption_column = d.caption_column if config.task == "text_to_audio" else None
    record = token_record(d.dataset) if d.dataset != "synthetic" else None
    if is_token_folder(d.dataset):
        tokens, info = load_token_dataset(d.dataset), record.codec
    elif record is not None:
        tokens, info = _saved_token_dataset(config), record.codec
    else:
        folder = Path(d.token_cache) if d.token_cache else output_dir / "tokens"
        info = _tokenise_to_folder(config, folder, device, loaded, caption_column)
        tokens = load_token_dataset(folder)
    if caption_column is not None and "caption" not in tokens.column_names:
        raise ValueError(
            f"the token dataset {d.dataset!r} has no captions; tokenise it with --caption-column for text_to_audio."
        )
    if main:
        (output_dir / CODEC_INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    if caption_column is None and "caption" in tokens.column_names:
        tokens = tokens.remove_columns("caption")  # continuation: audio only
    return tokens, info  # token rows call their caption column "caption", whatever the corpus called it


def _saved_token_dataset(config: RecipeConfig) -> Dataset:
    """The rows of a token folder an earlier version wrote (a ``save_to_disk`` token set, or a cache of the
    former ``encode_audio_dataset``), at most ``data.max_examples``."""
    from semantilm.data.token_dataset import load_token_dataset

    d = config.data
    tokens = load_token_dataset(d.dataset)
    return tokens.select(range(d.max_examples)) if d.max_examples is not None and len(tokens) > d.max_examples else tokens


def _tokenise_to_folder(config: RecipeConfig, folder: Path, device: str, loaded: Any,
                        caption_column: str | None) -> dict[str, Any]:
    """Tokenise ``data.dataset`` into ``folder`` with every process of the run; the codec facts."""
    from accelerate import PartialState

    from codec.checkpoints import official_selectors
    from semantilm.codec_api import load_codec
    from semantilm.data.corpus_tokens import tokenize_corpus
    from semantilm.data.tokenize_settings import TokenizeSettings

    d, c = config.data, config.codec
    source = Path(d.dataset).expanduser()
    if d.dataset.startswith((".", "/", "~")) and not source.exists() and "*" not in d.dataset:
        raise ValueError(f"dataset {d.dataset!r} is neither a folder of audio files nor a folder saved with "
                         "save_to_disk, Parquet files or .tar shards: it does not exist.")
    state = PartialState()
    _, vocab = official_selectors(c.name, c.token_rate, c.vocab)  # codec.vocab chooses official variants only
    codec = loaded if loaded is not None else load_codec(c.name, c.token_rate, vocab, device, c.cache_dir,
                                                         decoder=False)
    settings = TokenizeSettings(split=d.split, audio_column=d.audio_column, caption_column=caption_column,
                                max_examples=d.max_examples, synthetic=_synthetic_config(config),
                                batch_size=d.encode_batch_size, shard_size=d.shard_size, device=device)
    result = tokenize_corpus(d.dataset, codec, folder, settings=settings, rank=state.process_index,
                             world_size=state.num_processes, progress=False,
                             codec_source={"name": c.name, "token_rate": c.token_rate, "vocab": c.vocab})
    del codec
    return result.manifest["codec"] if result.manifest else json.loads((folder / "semantilm_tokens.json").read_text())["codec"]


def _text_tokenizer(config: RecipeConfig, tokens: Dataset, codec: Any, output_dir: Path, main: bool) -> AudioTextTokenizer:
    from semantilm.tokens.tokenizer import AudioTextTokenizer, train_sentencepiece

    path = output_dir / SENTENCEPIECE_MODEL
    if main and not path.is_file():  # reused when resuming: the vocabulary must not change
        texts = tokens["caption"] if "caption" in tokens.column_names else _NO_CAPTIONS_TEXT
        train_sentencepiece(texts, path, vocab_size=config.model.text_vocab_size,
                            lowercase=config.model.lowercase_captions)
    return AudioTextTokenizer.from_sentencepiece(path, codec, pattern=config.model.pattern)


def _model_and_tokenizer(config: RecipeConfig, tokens: Dataset, codec: Any, output_dir: Path, main: bool, state: Any):
    from semantilm.models.lm import build_lm, extend_pretrained_lm, layout_for_pretrained
    from semantilm.models.lora import apply_lora
    from semantilm.tokens.tokenizer import AudioTextTokenizer

    m = config.model
    if m.pretrained is None:
        with state.main_process_first():
            tokenizer = _text_tokenizer(config, tokens, codec, output_dir, main)
        # model.size was resolved and checked when the config was made (ModelSection)
        return build_lm(tokenizer.layout, m.size, seed=config.train.seed), tokenizer
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(m.pretrained)
    text_tok = AutoTokenizer.from_pretrained(m.pretrained)
    layout = layout_for_pretrained(model, codec, pattern=m.pattern, text_tokenizer=text_tok)
    model = extend_pretrained_lm(model, layout)
    if m.lora is not None:
        model = apply_lora(model, layout, m.lora)
    return model, AudioTextTokenizer(text_tok, layout)


def _eval_split(config: RecipeConfig, tokens: Dataset) -> tuple[Dataset, Dataset | None]:
    """(train rows, eval rows or None): a seeded split of ``data.eval_fraction`` of the rows (the
    same in every process), or the token dataset ``data.eval_dataset``."""
    d = config.data
    if d.eval_dataset is not None:
        from codec.data import load_corpus
        from semantilm.data.token_dataset import is_token_dataset

        held_out = load_corpus(d.eval_dataset, split=d.split)
        if not is_token_dataset(held_out):
            raise ValueError(f"data.eval_dataset={d.eval_dataset!r} is not a token dataset; tokenise it with "
                             "`semantilm tokenize` first.")
        keep = [c for c in tokens.column_names if c in held_out.column_names]
        return tokens, held_out.select_columns(keep)
    if not d.eval_fraction:
        return tokens, None
    count = max(1, round(d.eval_fraction * len(tokens)))
    if count >= len(tokens):
        raise ValueError(f"data.eval_fraction={d.eval_fraction} leaves no training rows of {len(tokens)}.")
    split = tokens.train_test_split(test_size=count, seed=config.train.seed, shuffle=True)
    return split["train"], split["test"]


def _checkpoint_callback(reference: Any) -> Any:
    from transformers import TrainerCallback

    from semantilm.models.hub import save_codec_reference

    class SaveCodecReference(TrainerCallback):
        """Writes ``semantilm_codec.json`` into every checkpoint folder."""

        def on_save(self, args, state, control, **kwargs):  # noqa: ANN001 - transformers signature
            if state.is_world_process_zero:
                save_codec_reference(Path(args.output_dir) / f"checkpoint-{state.global_step}", reference)
            return control

    return SaveCodecReference()


def run_recipe(config: RecipeConfig, task: str | None = None, codec: Any = None) -> RecipeResult:
    """Run one recipe in this process (one of many under ``accelerate launch``).

    task: when given, ``config.task`` must be it (the recipe scripts pass theirs).
    codec: the codec ``config.codec`` names, when the caller has loaded it already (the main
    process tokenises with it instead of loading it again).
    """
    import torch
    import yaml
    from accelerate import PartialState
    from transformers import set_seed

    from semantilm.models.hub import CodecReference, save_codec_reference
    from semantilm.training.token_codec import check_same_codec, resolve_recipe_codec, token_record
    from semantilm.training.trainer import build_collator, resolve_use_cpu, train_lm

    if not isinstance(config, RecipeConfig):
        raise TypeError(f"config must be a RecipeConfig, got {type(config).__name__}.")
    if task is not None and config.task != task:
        raise ValueError(f"this is the {task} recipe but the config says task: {config.task}; use the {config.task} recipe.")
    # The codec of token folders given as data, or the check that the config names it: before any work.
    config = dataclasses.replace(config, codec=resolve_recipe_codec(config.codec, config.data.dataset))
    eval_record = token_record(config.data.eval_dataset)
    if eval_record is not None:  # evaluated as tokens of the recipe's codec: they must be
        c = config.codec
        check_same_codec(c.name, c.token_rate, c.vocab, eval_record, f"data.eval_dataset={config.data.eval_dataset!r}")
    env_cpu = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
    use_cpu = resolve_use_cpu(config.train.use_cpu) or env_cpu  # what the Trainer will decide too
    state = PartialState(cpu=use_cpu)  # device and process group decided once, here
    main = state.is_main_process
    set_seed(config.train.seed)
    output_dir = Path(config.train.output_dir)
    if main:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / RESOLVED_CONFIG_FILE).write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
    logger.info("recipe %s: process %d of %d on %s", config.task, state.process_index, state.num_processes, state.device)

    tokens, info = _tokenise(config, output_dir, _codec_device(config.codec.device, state), main, codec)
    codec = _RecordedCodec(info)  # the layout needs only the codec's facts
    if torch.cuda.is_available():
        torch.cuda.empty_cache()  # the codec's memory goes back before the LM trains
    model, tokenizer = _model_and_tokenizer(config, tokens, codec, output_dir, main, state)

    reference = CodecReference(config.codec.name, config.codec.token_rate, config.codec.vocab, info["variant"])
    tokens, eval_tokens = _eval_split(config, tokens)
    if len(tokens) == 0:
        raise ValueError(f"the training split is empty: data.dataset={config.data.dataset!r} (split "
                         f"{config.data.split!r}) gave no rows to train on; check the data source.")
    if main and config.eval.generation:  # rows without captions or judges out of reach stop before training
        from semantilm.training.generation_eval import check_generation_eval

        check_generation_eval(config, eval_tokens)
    collator = build_collator(tokenizer, config.train)
    if config.log_data_order:
        tokens = tokens.add_column("example_id", list(range(len(tokens))))
        collator = DataOrderRecorder(collator, output_dir / "data_order", state.process_index)
    trainer = train_lm(
        model, tokenizer, tokens, config.train,
        resume_from_checkpoint=True if config.resume else None,
        callbacks=[_checkpoint_callback(reference)],
        data_collator=collator, eval_dataset=eval_tokens,
    )
    if main:
        save_codec_reference(output_dir, reference)
    generation = None
    if main and config.eval.generation:
        from semantilm.training.generation_eval import evaluate_trained_generation

        generation = evaluate_trained_generation(config, output_dir, eval_tokens, trainer)
    losses = [(int(e["step"]), float(e["loss"])) for e in trainer.state.log_history if "loss" in e]
    evals = [{k: float(v) for k, v in e.items() if k.startswith("eval_")} | {"step": int(e["step"])}
             for e in trainer.state.log_history if "eval_loss" in e]
    return RecipeResult(output_dir, int(trainer.state.global_step), losses, len(trainer.train_dataset), evals,
                        generation)
