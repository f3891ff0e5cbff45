"""Tiny random-weight judge models saved like hub checkpoints (no download): a CLAP model with a
byte-level RoBERTa tokenizer made from a vocabulary written here, and an AST audio classifier, each with
its feature extractor; and the sounds the tests judge."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
TAGGER_LABELS = ["tone", "noise", "speech", "music", "dog", "rain", "engine", "bird"]


def _byte_characters() -> list[str]:
    """The 256 characters byte-level BPE uses for the bytes (GPT-2's table)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = [], 0
    for b in range(256):
        if b in printable:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def save_tiny_clap(folder: Path, seed: int = 0) -> Path:
    """A ~20k-parameter ``ClapModel`` (HTSAT audio tower, RoBERTa text tower, 16-d projections) with a
    ``ClapFeatureExtractor`` (48 kHz, 1 s windows) and a byte-level ``RobertaTokenizer`` (no merges)."""
    from transformers import (
        ClapAudioConfig,
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        ClapProcessor,
        ClapTextConfig,
        RobertaTokenizer,
    )

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {token: i for i, token in enumerate(SPECIALS + _byte_characters())}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = RobertaTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=32)
    audio = ClapAudioConfig(depths=[1, 1], num_attention_heads=[1, 2], patch_embeds_hidden_size=8, hidden_size=16,
                            window_size=8, projection_dim=16, num_hidden_layers=2, spec_size=128)
    text = ClapTextConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_attention_heads=2,
                          num_hidden_layers=1, projection_dim=16, max_position_embeddings=40)
    torch.manual_seed(seed)
    model = ClapModel(ClapConfig(text_config=text.to_dict(), audio_config=audio.to_dict(), projection_dim=16))
    model.save_pretrained(folder)
    extractor = ClapFeatureExtractor(truncation="rand_trunc", max_length_s=1)  # 1 s windows: quick tests
    ClapProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def save_tiny_ast(folder: Path, seed: int = 0) -> Path:
    """A ~30k-parameter ``ASTForAudioClassification`` over ``TAGGER_LABELS`` with its feature extractor (16 kHz)."""
    from transformers import ASTConfig, ASTFeatureExtractor, ASTForAudioClassification

    config = ASTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, initializer_range=0.5,
                       id2label=dict(enumerate(TAGGER_LABELS)), label2id={n: i for i, n in enumerate(TAGGER_LABELS)})
    torch.manual_seed(seed)
    ASTForAudioClassification(config).save_pretrained(folder)
    ASTFeatureExtractor().save_pretrained(folder)
    return folder


def tone(frequency: float, seconds: float = 1.0, rate: int = 16000, phase: float = 0.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * frequency * t + phase)).astype(np.float32)


def noise(seed: int, seconds: float = 1.0, rate: int = 16000) -> np.ndarray:
    return (0.3 * np.random.default_rng(seed).standard_normal(int(seconds * rate))).astype(np.float32)


def write_folder(folder: Path, clips: dict[str, np.ndarray], captions: dict[str, str] | None = None,
                 rate: int = 16000) -> Path:
    """``NAME.wav`` per clip and, with captions, a ``metadata.csv`` (``file_name,caption``)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, wave in clips.items():
        sf.write(folder / f"{name}.wav", wave, rate, subtype="PCM_16")
    if captions is not None:
        lines = ["file_name,caption"] + [f"{name}.wav,{captions[name]}" for name in clips]
        (folder / "metadata.csv").write_text("\n".join(lines) + "\n")
    return folder
