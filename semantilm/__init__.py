"""semantilm: language modelling on interleaved SemantiCodec token streams.

``import semantilm`` stays cheap: torch, transformers, datasets and peft load on first use of
the names below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "AudioCodec": "codec_api",
    "AudioTokenLayout": "tokens.layout",
    "LayoutNotFoundError": "tokens.layout",
    "AudioTextTokenizer": "tokens.tokenizer",
    "train_sentencepiece": "tokens.tokenizer",
    "LMConfig": "models.lm",
    "LoraSettings": "models.lora",
    "build_lm": "models.lm",
    "layout_for_pretrained": "models.lm",
    "extend_pretrained_lm": "models.lm",
    "apply_lora": "models.lora",
    "merge_lora": "models.lora",
    "save_lm": "models.lm",
    "load_lm": "models.lm",
    "tokenize_corpus": "data.corpus_tokens",
    "TokenizeSettings": "data.tokenize_settings",
    "load_token_dataset": "data.token_dataset",
    "AudioLMCollator": "data.collator",
    "TrainConfig": "training.trainer",
    "train_lm": "training.trainer",
    "AudioTokenConstraintLogitsProcessor": "generation.processors",
    "AudioGenerationOutput": "generation.outputs",
    "generate_audio": "generation.generate",
    "continue_audio": "generation.generate",
    "generate_audio_stream": "generation.stream",
    "continue_audio_stream": "generation.stream",
    "AudioChunk": "generation.stream",
    "AudioStream": "generation.stream",
    "LMSpeed": "generation.lm_speed",
    "SamplingSettings": "generation.settings",
    "load_codec": "codec_api",
    "push_to_hub": "models.hub",
    "RecipeConfig": "training.recipe_config",
    "run_recipe": "training.recipes",
}

__all__ = [
    "AudioChunk",
    "AudioCodec",
    "AudioGenerationOutput",
    "AudioLMCollator",
    "AudioStream",
    "AudioTextTokenizer",
    "AudioTokenConstraintLogitsProcessor",
    "AudioTokenLayout",
    "LMConfig",
    "LMSpeed",
    "LayoutNotFoundError",
    "LoraSettings",
    "RecipeConfig",
    "SamplingSettings",
    "TokenizeSettings",
    "TrainConfig",
    "apply_lora",
    "build_lm",
    "continue_audio",
    "continue_audio_stream",
    "extend_pretrained_lm",
    "generate_audio",
    "generate_audio_stream",
    "layout_for_pretrained",
    "load_codec",
    "load_lm",
    "load_token_dataset",
    "merge_lora",
    "push_to_hub",
    "run_recipe",
    "save_lm",
    "tokenize_corpus",
    "train_lm",
    "train_sentencepiece",
]

# Names of earlier versions, with what replaces them (one tokeniser: tokenize_corpus).
_REPLACED = {
    "encode_audio_dataset": "semantilm.tokenize_corpus(dataset, codec, folder, "
                            "settings=semantilm.TokenizeSettings(caption_column=...)), "
                            "then semantilm.load_token_dataset(folder) (docs/tokenize.md)",
    "encode_audio_stream": "semantilm.tokenize_corpus(iterable_dataset, codec, folder), which reads an "
                           "IterableDataset as it streams, then semantilm.load_token_dataset(folder) (docs/tokenize.md)",
    "ClassifierFreeGuidanceLogitsProcessor": "semantilm.generate_audio(..., sampling=semantilm.SamplingSettings("
                                             "guidance_scale=...)), which runs guidance in one forward per step (docs/lm.md)",
}

if TYPE_CHECKING:  # pragma: no cover
    from semantilm.codec_api import AudioCodec, load_codec
    from semantilm.data.collator import AudioLMCollator
    from semantilm.data.corpus_tokens import tokenize_corpus
    from semantilm.data.token_dataset import load_token_dataset
    from semantilm.data.tokenize_settings import TokenizeSettings
    from semantilm.generation.generate import continue_audio, generate_audio
    from semantilm.generation.lm_speed import LMSpeed
    from semantilm.generation.outputs import AudioGenerationOutput
    from semantilm.generation.processors import AudioTokenConstraintLogitsProcessor
    from semantilm.generation.settings import SamplingSettings
    from semantilm.generation.stream import (
        AudioChunk,
        AudioStream,
        continue_audio_stream,
        generate_audio_stream,
    )
    from semantilm.models.hub import push_to_hub
    from semantilm.models.lm import (
        LMConfig,
        build_lm,
        extend_pretrained_lm,
        layout_for_pretrained,
        load_lm,
        save_lm,
    )
    from semantilm.models.lora import LoraSettings, apply_lora, merge_lora
    from semantilm.tokens.layout import AudioTokenLayout, LayoutNotFoundError
    from semantilm.tokens.tokenizer import AudioTextTokenizer, train_sentencepiece
    from semantilm.training.recipe_config import RecipeConfig
    from semantilm.training.recipes import run_recipe
    from semantilm.training.trainer import TrainConfig, train_lm


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if name in _REPLACED:
        raise AttributeError(f"semantilm.{name} was replaced: use {_REPLACED[name]}.")
    if module is None:
        raise AttributeError(f"module 'semantilm' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
