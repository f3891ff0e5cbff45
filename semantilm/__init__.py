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
    "AudioTokenLayout": "layout",
    "LayoutNotFoundError": "layout",
    "AudioTextTokenizer": "tokenizer",
    "train_sentencepiece": "tokenizer",
    "LMConfig": "modeling",
    "LoraSettings": "modeling",
    "build_lm": "modeling",
    "layout_for_pretrained": "modeling",
    "extend_pretrained_lm": "modeling",
    "apply_lora": "modeling",
    "merge_lora": "modeling",
    "save_lm": "modeling",
    "load_lm": "modeling",
    "encode_audio_dataset": "data",
    "encode_audio_stream": "data",
    "AudioLMCollator": "data",
    "TrainConfig": "training",
    "train_lm": "training",
    "AudioTokenConstraintLogitsProcessor": "generation",
    "ClassifierFreeGuidanceLogitsProcessor": "generation",
    "AudioGenerationOutput": "generation",
    "generate_audio": "generation",
    "continue_audio": "generation",
    "load_codec": "codec_api",
    "push_to_hub": "hub",
    "RecipeConfig": "recipe_config",
    "run_recipe": "recipes",
}

__all__ = [
    "AudioCodec",
    "AudioGenerationOutput",
    "AudioLMCollator",
    "AudioTextTokenizer",
    "AudioTokenConstraintLogitsProcessor",
    "AudioTokenLayout",
    "ClassifierFreeGuidanceLogitsProcessor",
    "LMConfig",
    "LayoutNotFoundError",
    "LoraSettings",
    "RecipeConfig",
    "TrainConfig",
    "apply_lora",
    "build_lm",
    "continue_audio",
    "encode_audio_dataset",
    "encode_audio_stream",
    "extend_pretrained_lm",
    "generate_audio",
    "layout_for_pretrained",
    "load_codec",
    "load_lm",
    "merge_lora",
    "push_to_hub",
    "run_recipe",
    "save_lm",
    "train_lm",
    "train_sentencepiece",
]

if TYPE_CHECKING:  # pragma: no cover
    from .codec_api import AudioCodec, load_codec
    from .data import AudioLMCollator, encode_audio_dataset, encode_audio_stream
    from .generation import (
        AudioGenerationOutput,
        AudioTokenConstraintLogitsProcessor,
        ClassifierFreeGuidanceLogitsProcessor,
        continue_audio,
        generate_audio,
    )
    from .hub import push_to_hub
    from .layout import AudioTokenLayout, LayoutNotFoundError
    from .modeling import (
        LMConfig,
        LoraSettings,
        apply_lora,
        build_lm,
        extend_pretrained_lm,
        layout_for_pretrained,
        load_lm,
        merge_lora,
        save_lm,
    )
    from .recipe_config import RecipeConfig
    from .recipes import run_recipe
    from .tokenizer import AudioTextTokenizer, train_sentencepiece
    from .training import TrainConfig, train_lm


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'semantilm' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
