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
    "LoadedLM",
    "build_lm",
    "layout_for_pretrained",
    "extend_pretrained_lm",
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
        from plumbing.config_file import check_field_types

        check_field_types(self)
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


def save_lm(
    model: PreTrainedModel,
    layout: AudioTokenLayout,
    directory: str | os.PathLike,
    tokenizer: AudioTextTokenizer | None = None,
    overwrite: bool = False,
) -> Path:
    """Save weights (safetensors), ``generation_config.json`` (eos ``<|audio_end|>``, pad
    ``<|pad|>``), ``semantilm_config.json`` and the text tokenizer (with ``tokenizer.json``: the
    folder opens with ``AutoTokenizer`` / ``AutoModelForCausalLM`` / ``pipeline`` alone).

    A peft model is merged first (the saved LM loads without peft). Files are written into a
    temporary folder beside ``directory`` and moved in place at the end, with the permissions of
    the umask. A ``directory`` that holds files is refused (``plumbing.io.OutputExistsError``) unless
    ``overwrite``; then the checkpoint files of the old save that the new one does not write
    (an adapter, weight shards, a codec reference, ...) are removed, so that the folder holds one model.
    """
    from plumbing.io import follow_umask
    from plumbing.progress import library_bars
    from semantilm.models.hf_tokenizer import generation_config_for
    from semantilm.models.hub import refuse_checkpoint_folder, remove_stale_checkpoint_files

    if hasattr(model, "merge_and_unload") and hasattr(model, "peft_config"):
        raise TypeError("model is a peft model; call semantilm.merge_lora(model) first (or save its adapter).")
    rows = embedding_rows(model)
    if rows != layout.vocab_size:
        raise ValueError(f"the model has {rows} embedding rows but layout.vocab_size={layout.vocab_size}.")
    directory = Path(directory)
    refuse_checkpoint_folder(directory, overwrite)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.tmp-"))
    try:
        with library_bars():  # the weight-writing bar only on a terminal
            model.save_pretrained(tmp)
        bos = tokenizer.bos_id if tokenizer is not None and tokenizer.add_bos else None
        generation_config_for(layout, bos).save_pretrained(tmp)  # stops at <|audio_end|>
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)  # also the Hugging Face tokenizer.json of all ids
        layout.save_pretrained(tmp)
        follow_umask(tmp)  # transformers writes its safetensors 0600
        directory.mkdir(exist_ok=True)
        written = {p.name for p in tmp.iterdir()}
        for item in sorted(tmp.iterdir(), key=lambda p: p.name == LAYOUT_FILE):  # layout last
            if item.name == LAYOUT_FILE:
                remove_stale_checkpoint_files(directory, written)
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
    from plumbing.progress import library_bars
    from semantilm.models.hub import check_weight_files, resolve_checkpoint
    from semantilm.tokens.tokenizer import TOKENIZER_INFO_FILE, AudioTextTokenizer

    directory = resolve_checkpoint(directory)  # a hub id is downloaded once; a missing folder is reported
    layout = AudioTokenLayout.from_pretrained(directory)  # raises LayoutNotFoundError first
    check_weight_files(directory)  # a damaged weights file is named, not a bare SafetensorError
    if codec is not None:
        layout.check_codec(codec, check_variant=check_variant)
    with library_bars():  # the weight-loading bars only on a terminal
        model = _load_weights(directory, layout, kwargs)
    tokenizer = None
    if (directory / TOKENIZER_INFO_FILE).is_file():
        tokenizer = AudioTextTokenizer.from_pretrained(directory, layout=layout)
    return LoadedLM(model=model, layout=layout, tokenizer=tokenizer)


def _load_weights(directory: Path, layout: AudioTokenLayout, kwargs: dict[str, Any]) -> Any:
    """The checkpoint's model: a LoRA adapter on its base (extended to the layout) or a whole LM."""
    from transformers import AutoModelForCausalLM

    if (directory / "adapter_config.json").is_file():
        from peft import PeftModel

        from semantilm.models.hub import load_adapter_base

        base = load_adapter_base(directory, **kwargs)
        if embedding_rows(base) != layout.vocab_size:
            extend_pretrained_lm(base, layout)
        return PeftModel.from_pretrained(base, directory)
    model = AutoModelForCausalLM.from_pretrained(directory, **kwargs)
    if embedding_rows(model) != layout.vocab_size:
        raise ValueError(
            f"{directory}: the model has {embedding_rows(model)} embedding rows but its layout says {layout.vocab_size}."
        )
    return model
