"""Checkpoint files: official hub files (download with cache, or a local copy), our own
safetensors format, its compact (fp16) export and the codecs embedded in the package. Weights
are loaded safely: ``torch.load(weights_only=True)``, ``np.load`` without pickle, or safetensors.
"""

from __future__ import annotations

import json
import numbers
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from codec.config import OFFICIAL_REPO, TINY, TINY_RANDOM, SemantiCodecConfig
from plumbing.io import atomic_write

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT_VERSION = 1
TRAINING_NOTES = "TRAINING.md"  # how an exported / embedded codec was trained

# Codecs shipped inside the package (``codec/pretrained/<name>/``), loadable by name offline.
EMBEDDED_CODECS: dict[str, Path] = {TINY: Path(__file__).resolve().parent / "pretrained" / "tiny"}
EMBEDDED_BUILD_COMMANDS: dict[str, str] = {TINY: "bash recipes/codec/train_tiny_codec.sh"}
EXPORT_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


@dataclass
class OfficialFiles:
    """Local paths of one official variant's files."""

    encoder: Path
    decoder: Path | None
    centroids: Path


def load_torch_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a PyTorch checkpoint holding only tensors (``weights_only=True``, never arbitrary pickles)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist.")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"refusing to load {str(path)!r}: it holds Python objects beyond tensors, which could run code "
            f"when unpickled ({err}). Re-save it as a plain state dict or as safetensors."
        ) from err
    except Exception as err:  # zip errors, EOF on truncated files, ...
        raise ValueError(
            f"could not read checkpoint {str(path)!r} ({type(err).__name__}: {err}); the file may be truncated "
            "or not a PyTorch checkpoint. Delete it to download it again."
        ) from err
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise ValueError(f"{str(path)!r} is not a state dict (a mapping of names to tensors).")
    return dict(obj)


def load_centroids(path: str | Path) -> np.ndarray:
    """Read a semantic centroid table ``.npy`` [V, D] (no pickles)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"centroid table {str(path)!r} does not exist.")
    try:
        table = np.load(path, allow_pickle=False)
    except Exception as err:
        raise ValueError(f"could not read centroid table {str(path)!r} ({type(err).__name__}: {err}).") from err
    if table.ndim != 2 or not np.issubdtype(table.dtype, np.floating):
        raise ValueError(f"centroid table {str(path)!r} must be a 2-D float array, got {table.dtype} {table.shape}.")
    return table.astype(np.float32, copy=False)


def official_paths(token_rate: int, semantic_vocab_size: int) -> dict[str, str]:
    """Relative paths of one variant in the official hub repository."""
    config = SemantiCodecConfig.official(token_rate, semantic_vocab_size)
    folder = config.official_checkpoint_folder()
    return {
        "encoder": f"{folder}/encoder.ckpt",
        "decoder": f"{folder}/decoder.ckpt",
        "centroids": config.official_centroid_file(),
    }


def resolve_official_files(
    source: str | Path = OFFICIAL_REPO,
    *,
    token_rate: int,
    semantic_vocab_size: int,
    cache_dir: str | Path | None = None,
    local_files_only: bool = False,
    with_decoder: bool = True,
) -> OfficialFiles:
    """Find the official files in a local folder (same layout as the hub repo) or download
    them from the hub repository ``source`` into the Hugging Face cache (``cache_dir``)."""
    rel = official_paths(token_rate, semantic_vocab_size)
    wanted = ["encoder", "centroids"] + (["decoder"] if with_decoder else [])
    local = Path(source)
    if local.is_dir():
        paths = {k: local / rel[k] for k in wanted}
        missing = [str(p) for p in paths.values() if not p.is_file()]
        if missing:
            raise FileNotFoundError(
                f"official checkpoint folder {str(local)!r} lacks {missing}; it must mirror the hub repo "
                f"{OFFICIAL_REPO} (e.g. {rel['encoder']})."
            )
    elif isinstance(source, Path) or looks_like_a_path(str(source)):
        check_codec_folder(source)
    else:
        from huggingface_hub import hf_hub_download

        paths = {}
        for k in wanted:
            try:
                paths[k] = Path(
                    hf_hub_download(
                        repo_id=str(source),
                        filename=rel[k],
                        cache_dir=None if cache_dir is None else str(cache_dir),
                        local_files_only=local_files_only,
                    )
                )
            except Exception as err:
                raise OSError(
                    f"could not get {rel[k]!r} from the hub repository {str(source)!r} ({type(err).__name__}: {err}). "
                    "Without network, download the files once elsewhere and pass the folder, or set "
                    "local_files_only=True to use the cache."
                ) from err
    return OfficialFiles(paths["encoder"], paths.get("decoder"), paths["centroids"])


def looks_like_a_path(name: str) -> bool:
    """True for names meant as local paths: what no hub repository id can have (more than one '/',
    a leading '.', '/' or '~', a '\\') or a first part that is a folder here (``runs/t2b`` when
    ``runs/`` exists). A mistyped local path is then reported as missing, not looked up on the hub."""
    if name.count("/") > 1 or name.startswith((".", "/", "~")) or "\\" in name:
        return True
    return "/" in name and Path(name.split("/")[0]).is_dir()


def check_codec_folder(name_or_path: str | Path) -> None:
    """Raise ``FileNotFoundError`` when ``name_or_path`` is meant as a local codec folder but is not a
    usable one: missing, a file, or a ``save_pretrained`` folder that lacks one of its two files."""
    path = Path(name_or_path).expanduser()
    text = str(name_or_path)
    if path.is_dir():
        present = [n for n in (CONFIG_NAME, WEIGHTS_NAME) if (path / n).is_file()]
        if len(present) == 1:
            lacking = CONFIG_NAME if present == [WEIGHTS_NAME] else WEIGHTS_NAME
            raise FileNotFoundError(
                f"codec folder {text!r} has {present[0]} but no {lacking}: save_pretrained writes both files "
                f"({CONFIG_NAME}, {WEIGHTS_NAME}). Copy the missing file from where the codec was saved, or save it "
                "again with SemantiCodec.save_pretrained."
            )
    elif path.exists():
        raise FileNotFoundError(f"codec {text!r} is a file; give the folder written by save_pretrained (with "
                                f"{CONFIG_NAME} and {WEIGHTS_NAME}) or a folder with the official layout.")
    elif isinstance(name_or_path, Path) or looks_like_a_path(text):
        raise FileNotFoundError(
            f"codec {text!r} is not a folder: it does not exist (a hub repository id is 'owner/name'); check the "
            f"path, or pass a hub repository such as {OFFICIAL_REPO!r}."
        )


def fixed_codec_config(name_or_path: str | Path) -> SemantiCodecConfig | None:
    """The config of a codec whose files fix its variant (an embedded codec, a ``save_pretrained`` folder),
    read without its weights; None for names where ``token_rate`` / ``semantic_vocab_size`` choose the
    variant (official checkpoints on the hub or in a local folder, ``tiny-random``). An embedded codec
    missing from this installation is the ``FileNotFoundError`` of :func:`embedded_codec_folder`."""
    if name_or_path == TINY_RANDOM:
        return None
    if isinstance(name_or_path, str) and name_or_path in EMBEDDED_CODECS:
        folder = embedded_codec_folder(name_or_path)
    else:
        folder = Path(name_or_path).expanduser()
        if not is_native_folder(folder):
            return None
    return SemantiCodecConfig.from_json_file(folder / CONFIG_NAME)


def check_codec_arguments(name_or_path: Any, token_rate: Any, semantic_vocab_size: Any) -> str | Path:
    """The arguments of ``SemantiCodec.from_pretrained`` checked: ``name_or_path`` (returned as a str or
    Path) a str or ``os.PathLike``, the rate one of the official ones or None, the vocabulary an int or
    None, both ones the codec can take (:func:`check_codec_choice`); else a ``TypeError`` / ``ValueError``."""
    from codec.config import OFFICIAL_TOKEN_RATES

    for name, value in (("token_rate", token_rate), ("semantic_vocab_size", semantic_vocab_size)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
            raise TypeError(f"{name} must be an int or None, got {type(value).__name__} ({value!r}).")
    if token_rate is not None and token_rate not in OFFICIAL_TOKEN_RATES:
        raise ValueError(f"token_rate={token_rate!r} is not supported; use one of {OFFICIAL_TOKEN_RATES} (or None).")
    if isinstance(name_or_path, os.PathLike):
        name_or_path = Path(name_or_path)
    elif not isinstance(name_or_path, str):
        raise TypeError(f"name_or_path must be a codec name, hub repository or folder (str or os.PathLike), "
                        f"got {type(name_or_path).__name__}.")
    if name_or_path != TINY_RANDOM:
        check_codec_choice(name_or_path, token_rate, semantic_vocab_size)
    return name_or_path


def check_codec_choice(name_or_path: str | Path, token_rate: int | None, semantic_vocab_size: int | None) -> None:
    """A ``ValueError`` for a token rate or semantic vocabulary that the codec ``name_or_path`` cannot take:
    a codec whose files fix its variant (:func:`fixed_codec_config`) takes only its own (or None). Official
    checkpoints take the official rates and vocabularies; ``tiny-random`` an official rate."""
    config = fixed_codec_config(name_or_path)
    if config is None:
        return
    asked = []
    if token_rate is not None and token_rate != config.token_rate:
        asked.append(f"token_rate={token_rate!r}")
    if semantic_vocab_size is not None and semantic_vocab_size not in (config.semantic_vocab_size,
                                                                       config.semantic_codebook_size):
        asked.append(f"semantic_vocab_size={semantic_vocab_size!r}")
    if asked:
        variant = "" if config.name == str(name_or_path) else f" (variant {config.name!r})"
        raise ValueError(
            f"codec {str(name_or_path)!r}{variant} runs at {config.token_rate} tokens/s with a semantic "
            f"vocabulary of {config.semantic_codebook_size}, fixed by its files, but {' and '.join(asked)} was "
            "asked. Leave the token rate and vocabulary unset for this codec (--token-rate / --vocab on the command "
            "line), or use a codec made for the rate you want (official checkpoints: 25, 50 or 100 tokens/s)."
        )


def variant_name(name_or_path: str | Path, token_rate: int | None, semantic_vocab_size: int | None) -> str:
    """The variant name (``SemantiCodec.variant``) of the codec ``from_pretrained`` would load, known without
    its weights: a fixed codec's config name, ``tiny-r<rate>``, or ``official-r<rate>-v<vocab>``."""
    config = fixed_codec_config(name_or_path)
    if config is not None:
        return config.name
    if name_or_path == TINY_RANDOM:
        return SemantiCodecConfig.tiny(token_rate or 100).name
    return SemantiCodecConfig.official(token_rate or 100, semantic_vocab_size or 16384).name


def official_selectors(name_or_path: str | Path, token_rate: int | None, semantic_vocab_size: int | None,
                       ) -> tuple[int | None, int | None]:
    """(token_rate, semantic_vocab_size) as far as they choose the variant of ``name_or_path``: both for
    official checkpoints, the rate for ``tiny-random``, neither for a codec whose files fix its variant.
    For values recorded or configured as official selectors (a checkpoint's codec reference, a recipe's
    ``codec.vocab``), which do not apply to such codecs."""
    if name_or_path == TINY_RANDOM:
        return token_rate, None
    if name_or_path in EMBEDDED_CODECS or is_native_folder(Path(name_or_path).expanduser()):
        return None, None
    return token_rate, semantic_vocab_size


def codec_options(name_or_path: str | Path, token_rate: int | None, semantic_vocab_size: int | None,
                  ) -> tuple[int | None, int | None]:
    """(token_rate, semantic_vocab_size) that load ``name_or_path`` with ``from_pretrained``, the defaults
    filled in: both for official checkpoints (100, 16384 when None), the rate for ``tiny-random`` (100),
    neither for a codec whose files fix them. One codec gets one record, however it was named."""
    token_rate, semantic_vocab_size = official_selectors(name_or_path, token_rate, semantic_vocab_size)
    if name_or_path == TINY_RANDOM:
        return token_rate or 100, None
    if name_or_path in EMBEDDED_CODECS or is_native_folder(Path(name_or_path).expanduser()):
        return None, None
    return token_rate or 100, semantic_vocab_size or 16384


def codec_for_variant(variant: str) -> tuple[str, int | None, int | None] | None:
    """(name, token_rate, vocab) that loads the codec of variant ``variant`` (an official variant, or an
    embedded codec: its own rate, and None for the vocabulary, which its files fix), or None when the
    variant name alone does not say where its weights are."""
    import re

    from codec.config import OFFICIAL_TOKEN_RATES, OFFICIAL_VOCAB_SIZES

    match = re.fullmatch(r"official-r(\d+)-v(\d+)", variant)
    if match and int(match[1]) in OFFICIAL_TOKEN_RATES and int(match[2]) in OFFICIAL_VOCAB_SIZES:
        return OFFICIAL_REPO, int(match[1]), int(match[2])
    for name, folder in EMBEDDED_CODECS.items():
        if is_native_folder(folder):
            config = SemantiCodecConfig.from_json_file(folder / CONFIG_NAME)
            if config.name == variant:
                return name, config.token_rate, None
    return None


def codec_for_token_files(paths: str | Path | list[str | Path]) -> tuple[str, int | None, int | None]:
    """(name, token_rate, vocab) of the codec that wrote the token files ``paths`` (one file or a list, all
    by one codec).

    A ``ValueError`` names the file when the files come from several codecs or from one that cannot
    be found by its variant name (a ``save_pretrained`` folder, ``tiny-random``): pass the codec then.
    """
    from codec.token_file import load_tokens
    from plumbing.io import path_list

    paths = path_list(paths, "paths")
    variants: dict[str, Path] = {}
    for path in paths:
        variants.setdefault(load_tokens(path).codec_variant, path)
    if len(variants) > 1:
        listing = ", ".join(f"{str(p)!r}: {v!r}" for v, p in variants.items())
        raise ValueError(f"the token files were made by different codecs ({listing}); decode each codec's files "
                         "separately, naming the codec.")
    variant, path = next(iter(variants.items()))
    found = codec_for_variant(variant)
    if found is None:
        hint = f" (tokens of {TINY_RANDOM!r}: --codec {TINY_RANDOM})" if variant.startswith("tiny-r") else ""
        raise ValueError(f"{str(path)!r} holds tokens of codec {variant!r}, which cannot be found by its name: name "
                         f"the codec that made them (its save_pretrained folder){hint}.")
    return found


def is_native_folder(path: str | Path) -> bool:
    path = Path(path)
    return (path / CONFIG_NAME).is_file() and (path / WEIGHTS_NAME).is_file()


def save_native(folder: str | Path, config: SemantiCodecConfig, state: Mapping[str, torch.Tensor]) -> None:
    """Write ``config.json`` + ``model.safetensors``; each file appears complete or not at all."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"format": "semantilm-codec", "format_version": str(FORMAT_VERSION)}
    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    atomic_write(folder / WEIGHTS_NAME, lambda tmp: save_file(tensors, tmp, metadata=meta))
    config.to_json_file(folder / CONFIG_NAME)


def embedded_codec_folder(name: str) -> Path:
    """The ``save_pretrained`` folder of the embedded codec ``name`` (e.g. ``"tiny"``).

    Raises FileNotFoundError naming the command that builds it when this installation does not
    hold it yet (the tiny codec is trained by ``recipes/codec/train_tiny_codec.sh``).
    """
    if name not in EMBEDDED_CODECS:
        raise ValueError(f"no embedded codec named {name!r}; embedded codecs: {sorted(EMBEDDED_CODECS)}.")
    folder = EMBEDDED_CODECS[name]
    if not is_native_folder(folder):
        raise FileNotFoundError(
            f"the embedded {name!r} codec is not in this installation ({str(folder)!r} has no {CONFIG_NAME} and "
            f"{WEIGHTS_NAME}): it has not been trained yet. Build it from a source checkout with "
            f"`{EMBEDDED_BUILD_COMMANDS[name]}` (then reinstall), or use {TINY_RANDOM!r} (random weights)."
        )
    return folder


def export_native(source: str | Path, out: str | Path, dtype: str = "float16", name: str | None = None) -> Path:
    """Copy the ``save_pretrained`` folder ``source`` to ``out`` with its floating tensors cast to
    ``dtype`` (loading casts them back to float32); ``name`` renames the variant (``config.name``).
    Returns the weights file. Integer tensors are kept as they are."""
    if dtype not in EXPORT_DTYPES:
        raise ValueError(f"dtype must be one of {sorted(EXPORT_DTYPES)}, got {dtype!r}.")
    config, state = load_native(source)
    if name is not None:
        if not name.strip():
            raise ValueError("the exported codec's name must not be empty.")
        config.name = name
    target = EXPORT_DTYPES[dtype]
    state = {k: v.to(target) if v.is_floating_point() else v for k, v in state.items()}
    save_native(out, config, state)
    return Path(out) / WEIGHTS_NAME


def load_native(folder: str | Path) -> tuple[SemantiCodecConfig, dict[str, torch.Tensor]]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    if not is_native_folder(folder):
        raise FileNotFoundError(f"{str(folder)!r} has no {CONFIG_NAME} and {WEIGHTS_NAME}.")
    try:
        config = SemantiCodecConfig.from_json_file(folder / CONFIG_NAME)
    except (json.JSONDecodeError, TypeError) as err:
        raise ValueError(f"{str(folder / CONFIG_NAME)!r} is not a valid codec config: {err}") from err
    try:
        state = load_file(str(folder / WEIGHTS_NAME))
    except (SafetensorError, OSError) as err:
        raise ValueError(f"could not read {str(folder / WEIGHTS_NAME)!r}: {err}; the file may be truncated. Copy or "
                         "download it again, or re-save the codec with save_pretrained.") from err
    return config, state
