"""The YAML configs shipped with semantilm (LM sizes, recipes, accelerate files), found from any folder.

The repository's ``configs/`` folder is installed as ``semantilm/configs`` (package data), so
``configs/lm/tiny.yaml``, ``lm/tiny.yaml`` or the name ``tiny`` name the same file in a source
checkout and in an installed wheel, whatever the working directory. A path that exists is
always used as it is, so a user's own copy wins over the shipped one.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CONFIG_KINDS", "configs_dir", "available_configs", "resolve_config"]

# kind (a sub-folder of configs/) -> what its files are, for messages
CONFIG_KINDS = {"lm": "LM size", "recipes": "recipe", "accelerate": "accelerate"}
_SUFFIXES = (".yaml", ".yml")


def configs_dir() -> Path:
    """The shipped configs: ``semantilm/configs`` when installed, ``configs/`` beside the package in a checkout."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "configs", package.parent / "configs"):
        if (candidate / "lm").is_dir():
            return candidate
    raise FileNotFoundError(
        f"the configs shipped with semantilm are missing (looked in {str(package / 'configs')!r} and "
        f"{str(package.parent / 'configs')!r}); reinstall semantilm."
    )


def _check_kind(kind: str | None) -> None:
    if kind is not None and kind not in CONFIG_KINDS:
        raise ValueError(f"kind must be one of {sorted(CONFIG_KINDS)} or None, got {kind!r}.")


def available_configs(kind: str | None = None) -> list[str]:
    """Names of the shipped configs of ``kind`` (paths under ``configs/<kind>/`` without ``.yaml``)."""
    _check_kind(kind)
    base = configs_dir() / kind if kind else configs_dir()
    files = (p for p in base.rglob("*") if p.suffix in _SUFFIXES and p.is_file())
    return sorted(p.relative_to(base).with_suffix("").as_posix() for p in files)


def _candidates(text: str, kind: str | None) -> list[Path]:
    """Where a relative path or name could be among the shipped configs."""
    rel = Path(text)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        return []
    if rel.parts[0] == "configs":
        rel = Path(*rel.parts[1:]) if len(rel.parts) > 1 else Path()
    root = configs_dir()
    out = []
    for base in ([root / kind] if kind else []) + [root]:
        out.append(base / rel)
        if rel.suffix not in _SUFFIXES:
            out += [base / (rel.as_posix() + suffix) for suffix in _SUFFIXES]
    return out


def resolve_config(path_or_name: str | os.PathLike, kind: str | None = None, label: str | None = None) -> Path:
    """The YAML file that ``path_or_name`` names: an existing path as it is, else a shipped config.

    kind:  "lm", "recipes" or "accelerate": also look under ``configs/<kind>/`` (so ``tiny`` is
           ``configs/lm/tiny.yaml``); None looks under ``configs/`` only.
    label: how messages name the input (e.g. ``model.size``); default "<kind> config".
    A name that is neither is a ``FileNotFoundError`` naming it, where it was looked for and
    the shipped configs of that kind.
    """
    _check_kind(kind)
    if not isinstance(path_or_name, (str, os.PathLike)):
        raise TypeError(f"a config path must be a str or os.PathLike, got {type(path_or_name).__name__}.")
    text = os.fspath(path_or_name)
    if label is None:
        label = f"{CONFIG_KINDS[kind]} config" if kind else "config"
    if not text.strip():
        raise FileNotFoundError(f"{label} is empty; give a YAML file or one of {available_configs(kind)}.")
    given = Path(text).expanduser()
    if given.is_file():
        return given
    if given.is_dir():
        raise IsADirectoryError(f"{label}={text!r} is a folder, not a YAML file.")
    for candidate in _candidates(text, kind):
        if candidate.is_file():
            return candidate
    where = configs_dir() / kind if kind else configs_dir()
    raise FileNotFoundError(
        f"{label}={text!r} is not a file: it does not exist from the working directory ({os.getcwd()}) nor "
        f"among the configs shipped with semantilm ({where}). Give the path of a YAML file or a shipped "
        f"{CONFIG_KINDS[kind] + ' ' if kind else ''}config: {', '.join(available_configs(kind))}."
    )
