"""A package's public names, taken from its modules on first use, so that importing the package
stays cheap (command-line ``--help`` imports no model code)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, modules: Mapping[str, tuple[str, ...]]) -> tuple[list[str], Callable[[str], Any]]:
    """``(__all__, __getattr__)`` for ``package`` whose names live in its ``modules`` (module -> names).

    The attribute is looked up in its module at every access, never cached on the package, so a
    name patched in its module (tests do this) is what the package hands out."""
    home = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in home:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{home[name]}"), name)

    return sorted(home), __getattr__
