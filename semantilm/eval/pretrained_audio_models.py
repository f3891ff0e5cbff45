"""Loading the pretrained models that judge generated audio (CLAP, an AudioSet tagger, any FAD embedder)
by hub name or local folder, with an error that names the model and says how to place it offline.

A name that is a folder is read from there. Otherwise it is a hub name: read from the Hugging Face
cache when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set, else downloaded once into it; when
the download fails (no network) the cache is tried before giving up.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_CLAP",
    "DEFAULT_TAGGER",
    "ModelUnavailableError",
    "PretrainedModelError",
    "hub_offline",
    "load_pretrained",
    "load_config_of",
]

# LAION-CLAP (HTSAT audio tower, RoBERTa text tower) trained on LAION-Audio-630K: the CLAP of the
# text-to-audio papers' CLAP scores, and one of fadtk's FAD embedders ("clap-laion-audio").
DEFAULT_CLAP = "laion/clap-htsat-unfused"
# The Audio Spectrogram Transformer fine-tuned on AudioSet (527 labels, mAP 0.459): the AudioSet
# tagger transformers ships (audiocraft uses PaSST, which transformers does not have).
DEFAULT_TAGGER = "MIT/ast-finetuned-audioset-10-10-0.4593"


class ModelUnavailableError(FileNotFoundError):
    """A model that is neither a local folder nor in reach (hub cache or download)."""


class PretrainedModelError(ValueError):
    """A model that loads but cannot play the part asked of it (e.g. a text model as the audio tagger)."""


def hub_offline() -> bool:
    """Whether the environment asks for no hub downloads (``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``)."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _looks_local(name: str) -> bool:
    """A path rather than a hub name (``owner/name``)."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or Path(name).exists()


def _unavailable(name: str, role: str, option: str, reason: str) -> ModelUnavailableError:
    return ModelUnavailableError(
        f"the {role} {name!r} ({option}) could not be loaded: {reason}. On a machine with network, download it "
        f"with `huggingface-cli download {name}` (or `hf download {name}`) and copy the Hugging Face cache "
        f"(~/.cache/huggingface) here, or save it with save_pretrained into a folder and pass that folder to {option}."
    )


def load_pretrained(loader: Any, name: str, role: str, option: str, cache_dir: str | None = None, **kwargs: Any) -> Any:
    """``loader.from_pretrained(name)`` (a transformers Auto* class or model class) from a local folder or the hub.

    role / option: how the error calls the model and the argument that names it (``"CLAP model"``,
    ``"--clap-model"``). A missing folder or an unreachable hub name is a :class:`ModelUnavailableError`.
    """
    if not isinstance(name, str) or not name.strip():
        raise PretrainedModelError(f"{option} must name a model (hub name or folder), got {name!r}.")
    path = Path(name).expanduser()
    if path.is_dir():
        try:
            return loader.from_pretrained(str(path), **kwargs)
        except (OSError, ValueError, KeyError) as err:
            raise PretrainedModelError(f"the {role} folder {name!r} ({option}) is not a complete transformers "
                                       f"model folder for {getattr(loader, '__name__', loader)}: {err}") from None
    if _looks_local(name):
        raise _unavailable(name, role, option, "it is a file, not a model folder" if path.exists() else "no such folder")
    offline = hub_offline()
    try:
        return loader.from_pretrained(name, cache_dir=cache_dir, local_files_only=offline, **kwargs)
    except OSError as err:
        first = err
    if not offline:  # the download failed: perhaps a copy is in the cache
        try:
            return loader.from_pretrained(name, cache_dir=cache_dir, local_files_only=True, **kwargs)
        except OSError:
            pass
    reason = "it is not in the Hugging Face cache and HF_HUB_OFFLINE is set" if offline else \
        f"it is not in the Hugging Face cache and the download failed ({str(first).splitlines()[0]})"
    raise _unavailable(name, role, option, reason) from None


def load_config_of(name: str, role: str, option: str, cache_dir: str | None = None) -> Any:
    """The transformers config of ``name`` (read first, so a model of the wrong kind is refused before
    its weights load)."""
    from transformers import AutoConfig

    return load_pretrained(AutoConfig, name, role, option, cache_dir)
