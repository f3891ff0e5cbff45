"""Causal LMs over an ``AudioTokenLayout``: built from scratch, or a pretrained LM extended
with the audio ids; LoRA adapters; saving and loading with the layout beside the weights.

Every saved LM directory holds the transformers checkpoint (loadable with
``AutoModelForCausalLM.from_pretrained``), ``semantilm_config.json`` (the layout and codec
variant) and, when given, the text tokenizer.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from semantilm.tokens.layout import LAYOUT_FILE, AudioTokenLayout

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedModel

    from semantilm.codec_api import AudioCodec
    from semantilm.tokens.tokenizer import AudioTextTokenizer

__all__ = [
    "LMConfig",
    "LoraSettings",
    "LoadedLM",
    "build_lm",
    "layout_for_pretrained",
    "extend_pretrained_lm",
    "apply_lora",
    "merge_lora",
    "merge_lora_checkpoint",
    "save_lm",
    "load_lm",
]

logger = logging.getLogger(__name__)


@dataclass
class LMConfig:
    """Size of a from-scratch causal LM (read from ``configs/lm/*.yaml``).

    The vocabulary size is not part of it: it always comes from the token layout.
    """

    architecture: str = "llama"  # transformers model_type of a Llama-style family
    hidden_size: int = 32
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int | None = None  # None = multi-head attention
    intermediate_size: int = 64
    max_position_embeddings: int = 512  # LM tokens of context
    rope_theta: float = 10000.0
    tie_word_embeddings: bool = True
    attention_dropout: float = 0.0
    initializer_range: float = 0.02

    def __post_init__(self) -> None:
        for name in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "max_position_embeddings"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size={self.hidden_size} must be divisible by num_attention_heads={self.num_attention_heads}."
            )
        kv = self.num_key_value_heads
        if kv is not None and (kv <= 0 or self.num_attention_heads % kv):
            raise ValueError(
                f"num_key_value_heads={kv} must divide num_attention_heads={self.num_attention_heads}."
            )

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> LMConfig:
        """Read a size YAML: a path, or a shipped size by name or as ``configs/lm/<name>.yaml``
        (``semantilm.resources.resolve_config``, from any working directory)."""
        import yaml

        from semantilm.resources import resolve_config

        path = resolve_config(path, "lm")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ValueError(f"{path}: not valid YAML: {err}") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: an LM size config must be a mapping of LMConfig keys, got {data!r}.")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{path}: unknown LMConfig keys {unknown}; known keys are {sorted(known)}.")
        try:
            return cls(**data)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: {err}") from None

    def to_transformers(self, layout: AudioTokenLayout) -> Any:
        """The transformers config of this size for ``layout``'s vocabulary."""
        from transformers import AutoConfig

        kwargs = dataclasses.asdict(self)
        model_type = kwargs.pop("architecture")
        if kwargs["num_key_value_heads"] is None:
            kwargs["num_key_value_heads"] = self.num_attention_heads
        return AutoConfig.for_model(
            model_type,
            vocab_size=layout.vocab_size,
            bos_token_id=layout.audio_start_id,
            eos_token_id=layout.audio_end_id,
            pad_token_id=layout.pad_id,
            **kwargs,
        )


def embedding_rows(model: Any) -> int:
    """Rows of the model's input embedding table (also through peft wrappers)."""
    return int(model.get_input_embeddings().weight.shape[0])


def build_lm(layout: AudioTokenLayout, config: LMConfig | str | os.PathLike, seed: int | None = None) -> PreTrainedModel:
    """A randomly initialised causal LM whose vocabulary is exactly ``layout.vocab_size``.

    config: an ``LMConfig``, the path of a YAML file or a shipped size (``"tiny"``, ``configs/lm/tiny.yaml``).
    """
    import torch
    from transformers import AutoModelForCausalLM

    if not isinstance(layout, AudioTokenLayout):
        raise TypeError(f"layout must be an AudioTokenLayout, got {type(layout).__name__}.")
    if not isinstance(config, LMConfig):
        config = LMConfig.from_yaml(config)
    if seed is not None:
        torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config.to_transformers(layout))


def layout_for_pretrained(
    model: PreTrainedModel, codec: AudioCodec, pattern: str = "interleave", text_tokenizer: Any = None
) -> AudioTokenLayout:
    """The layout that appends ``codec``'s ids after all embedding rows of a pretrained LM.

    The text range is the model's embedding table (which may be larger than its tokenizer),
    so no existing row is reused.
    """
    rows = embedding_rows(model)
    if text_tokenizer is not None and len(text_tokenizer) > rows:
        raise ValueError(f"the tokenizer has {len(text_tokenizer)} ids but the model only {rows} embedding rows.")
    return AudioTokenLayout.for_codec(codec, text_vocab_size=rows, pattern=pattern)


def extend_pretrained_lm(model: PreTrainedModel, layout: AudioTokenLayout) -> PreTrainedModel:
    """Resize a pretrained LM's embedding table and output head to ``layout.vocab_size``.

    New embedding rows (and new head rows when the head is not tied) are set to the mean of
    the existing rows, so that the new ids start at the centre of the text embeddings and the
    LM's outputs are unchanged for text inputs. Returns the same model, changed in place.
    """
    import torch

    embeddings = model.get_input_embeddings()
    old = embeddings.num_embeddings
    if old != layout.text_vocab_size:
        raise ValueError(
            f"the model has {old} embedding rows but layout.text_vocab_size={layout.text_vocab_size}; "
            "build the layout with semantilm.layout_for_pretrained(model, codec)."
        )
    head = model.get_output_embeddings()
    tied = head is not None and head.weight is embeddings.weight
    with torch.no_grad():
        emb_mean = embeddings.weight.mean(0)
        head_mean = head.weight.mean(0) if head is not None and not tied else None
    model.resize_token_embeddings(layout.vocab_size, mean_resizing=False)
    with torch.no_grad():
        model.get_input_embeddings().weight[old:] = emb_mean
        new_head = model.get_output_embeddings()
        if head_mean is not None:
            new_head.weight[old:] = head_mean
            if getattr(new_head, "bias", None) is not None:
                new_head.bias[old:] = new_head.bias[:old].mean()
    model.config.pad_token_id = layout.pad_id
    logger.info("extended the LM vocabulary from %d to %d ids (tied head: %s)", old, layout.vocab_size, tied)
    return model


@dataclass
class LoraSettings:
    """LoRA on a pretrained LM whose new (audio and special) token rows train too.

    new_tokens: ``"trainable_tokens"`` trains only the new rows of the embedding table (and of
                the head when it is not tied) through peft's ``trainable_token_indices``;
                ``"modules_to_save"`` trains full copies of the embedding table and head.
    """

    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    target_modules: list[str] | str = "all-linear"
    new_tokens: str = "trainable_tokens"

    def __post_init__(self) -> None:
        if self.new_tokens not in ("trainable_tokens", "modules_to_save"):
            raise ValueError(f"new_tokens={self.new_tokens!r}; use 'trainable_tokens' or 'modules_to_save'.")
        if self.r <= 0:
            raise ValueError(f"r must be positive, got {self.r}.")


def _module_name(model: Any, module: Any) -> str:
    for name, candidate in model.named_modules():
        if candidate is module:
            return name
    raise ValueError("module not found in the model")  # pragma: no cover - internal invariant


def apply_lora(model: PreTrainedModel, layout: AudioTokenLayout, settings: LoraSettings | None = None) -> Any:
    """Wrap an extended pretrained LM in a peft LoRA model (new token rows trainable)."""
    from peft import LoraConfig, get_peft_model

    settings = settings or LoraSettings()
    if embedding_rows(model) != layout.vocab_size:
        raise ValueError(
            f"the model has {embedding_rows(model)} embedding rows but the layout "
            f"{layout.vocab_size}; call extend_pretrained_lm(model, layout) first."
        )
    embeddings, head = model.get_input_embeddings(), model.get_output_embeddings()
    tied = head is not None and head.weight is embeddings.weight
    emb_name = _module_name(model, embeddings).split(".")[-1]
    head_name = _module_name(model, head).split(".")[-1] if head is not None else None
    kwargs: dict[str, Any] = {}
    if settings.new_tokens == "trainable_tokens":
        indices = {emb_name: layout.new_token_ids()}
        if head_name is not None and not tied:
            indices[head_name] = layout.new_token_ids()
        kwargs["trainable_token_indices"] = indices
    else:
        kwargs["modules_to_save"] = [emb_name] + ([head_name] if head_name and not tied else [])
    config = LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=settings.target_modules,
        task_type="CAUSAL_LM",
        **kwargs,
    )
    return get_peft_model(model, config)


def merge_lora(peft_model: Any) -> PreTrainedModel:
    """Fold LoRA weights and trained token rows into a plain transformers model."""
    return peft_model.merge_and_unload()


def save_lm(
    model: PreTrainedModel,
    layout: AudioTokenLayout,
    directory: str | os.PathLike,
    tokenizer: AudioTextTokenizer | None = None,
) -> Path:
    """Save weights (safetensors), ``generation_config.json`` (eos ``<|audio_end|>``, pad
    ``<|pad|>``), ``semantilm_config.json`` and the text tokenizer (with ``tokenizer.json``: the
    folder opens with ``AutoTokenizer`` / ``AutoModelForCausalLM`` / ``pipeline`` alone).

    A peft model is merged first (the saved LM loads without peft). Files are written into a
    temporary folder beside ``directory`` and moved in place at the end.
    """
    from semantilm.models.hf_tokenizer import generation_config_for

    if hasattr(model, "merge_and_unload") and hasattr(model, "peft_config"):
        raise TypeError("model is a peft model; call semantilm.merge_lora(model) first (or save its adapter).")
    rows = embedding_rows(model)
    if rows != layout.vocab_size:
        raise ValueError(f"the model has {rows} embedding rows but layout.vocab_size={layout.vocab_size}.")
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.tmp-"))
    try:
        model.save_pretrained(tmp)
        bos = tokenizer.bos_id if tokenizer is not None and tokenizer.add_bos else None
        generation_config_for(layout, bos).save_pretrained(tmp)  # stops at <|audio_end|>
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)  # also the Hugging Face tokenizer.json of all ids
        layout.save_pretrained(tmp)
        directory.mkdir(exist_ok=True)
        for item in sorted(tmp.iterdir(), key=lambda p: p.name == LAYOUT_FILE):  # layout last
            os.replace(item, directory / item.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return directory


@dataclass
class LoadedLM:
    """What ``load_lm`` returns: the model, its layout and (when saved) its text tokenizer."""

    model: Any
    layout: AudioTokenLayout
    tokenizer: AudioTextTokenizer | None = field(default=None)


def load_lm(
    directory: str | os.PathLike, codec: AudioCodec | None = None, check_variant: bool = True, **kwargs: Any
) -> LoadedLM:
    """Load an LM saved by ``save_lm`` (or a LoRA adapter checkpoint written during training).

    directory: a local folder, or a hub repository id (``owner/name``) of such a folder
               (``semantilm.push_to_hub``).
    codec:  when given, the layout is checked against it (``ValueError`` on mismatch).
    kwargs: passed to ``from_pretrained`` (e.g. ``torch_dtype``).
    """
    from transformers import AutoModelForCausalLM

    from codec.progress import library_bars
    from semantilm.models.hub import check_weight_files, resolve_checkpoint
    from semantilm.tokens.tokenizer import TOKENIZER_INFO_FILE, AudioTextTokenizer

    directory = resolve_checkpoint(directory)  # a hub id is downloaded once; a missing folder is reported
    layout = AudioTokenLayout.from_pretrained(directory)  # raises LayoutNotFoundError first
    check_weight_files(directory)  # a damaged weights file is named, not a bare SafetensorError
    if codec is not None:
        layout.check_codec(codec, check_variant=check_variant)
    if (directory / "adapter_config.json").is_file():
        from peft import PeftConfig, PeftModel

        base_path = PeftConfig.from_pretrained(directory).base_model_name_or_path
        with library_bars():  # the weight-loading bar only on a terminal
            base = AutoModelForCausalLM.from_pretrained(base_path, **kwargs)
        if embedding_rows(base) != layout.vocab_size:
            extend_pretrained_lm(base, layout)
        with library_bars():
            model = PeftModel.from_pretrained(base, directory)
    else:
        with library_bars():
            model = AutoModelForCausalLM.from_pretrained(directory, **kwargs)
        rows = embedding_rows(model)
        if rows != layout.vocab_size:
            raise ValueError(
                f"{directory}: the model has {rows} embedding rows but its layout says {layout.vocab_size}."
            )
    tokenizer = None
    if (directory / TOKENIZER_INFO_FILE).is_file():
        tokenizer = AudioTextTokenizer.from_pretrained(directory, layout=layout)
    return LoadedLM(model=model, layout=layout, tokenizer=tokenizer)


def merge_lora_checkpoint(source: str | os.PathLike, destination: str | os.PathLike, **kwargs: Any) -> Path:
    """Merge a LoRA adapter checkpoint (``load_lm`` reads it with its base LM) into a plain
    transformers checkpoint at ``destination``: weights, tokenizer, layout and codec reference,
    loadable without peft (also by ``AutoModelForCausalLM`` / ``AutoTokenizer`` alone)."""
    from semantilm.models.hub import load_codec_reference, resolve_checkpoint, save_codec_reference

    source = resolve_checkpoint(source)
    loaded = load_lm(source, **kwargs)
    model = loaded.model
    if hasattr(model, "peft_config"):
        model = merge_lora(model)
    out = save_lm(model, loaded.layout, destination, tokenizer=loaded.tokenizer)
    reference = load_codec_reference(source)
    if reference is not None:
        save_codec_reference(out, reference)
    return out
