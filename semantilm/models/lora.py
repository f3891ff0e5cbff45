"""LoRA on a pretrained LM extended with audio ids: the adapter, merging it back into plain weights."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from semantilm.models.lm import embedding_rows, load_lm, save_lm
from semantilm.tokens.layout import AudioTokenLayout

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedModel

__all__ = ["LoraSettings", "apply_lora", "merge_lora", "merge_lora_checkpoint"]


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
        from plumbing.config_file import check_field_types

        check_field_types(self)
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
    peft_model = get_peft_model(model, config)
    from semantilm.models.hub import base_location

    for adapter in peft_model.peft_config.values():  # the adapter names its base by this: findable from any folder
        adapter.base_model_name_or_path = base_location(adapter.base_model_name_or_path)
    return peft_model


def merge_lora(peft_model: Any) -> PreTrainedModel:
    """Fold LoRA weights and trained token rows into a plain transformers model."""
    return peft_model.merge_and_unload()


def merge_lora_checkpoint(source: str | os.PathLike, destination: str | os.PathLike, overwrite: bool = False,
                          **kwargs: Any) -> Path:
    """Merge a LoRA adapter checkpoint (``load_lm`` reads it with its base LM) into a plain
    transformers checkpoint at ``destination``: weights, tokenizer, layout and codec reference,
    loadable without peft (also by ``AutoModelForCausalLM`` / ``AutoTokenizer`` alone).

    A ``destination`` that holds files (another checkpoint) is refused unless ``overwrite``
    (``plumbing.io.OutputExistsError``, before the models load); the source folder itself always is
    (the merged weights would sit beside the adapter they came from, and the adapter would be lost).
    """
    from semantilm.models.hub import (
        load_codec_reference,
        refuse_checkpoint_folder,
        resolve_checkpoint,
        save_codec_reference,
    )

    source = resolve_checkpoint(source)
    destination = Path(destination)
    if destination.expanduser().resolve() == source.resolve():
        raise ValueError(f"merge_lora_checkpoint would write the merged model into its source {str(source)!r}, "
                         "over the adapter it merges; give another destination folder.")
    refuse_checkpoint_folder(destination, overwrite)
    loaded = load_lm(source, **kwargs)
    model = loaded.model
    if hasattr(model, "peft_config"):
        model = merge_lora(model)
    out = save_lm(model, loaded.layout, destination, tokenizer=loaded.tokenizer, overwrite=overwrite)
    reference = load_codec_reference(source)
    if reference is not None:
        save_codec_reference(out, reference)
    return out
