"""The ``semantilm`` command line: one module per command group, each command a thin call into the library."""

from semantilm.cli.main import main

__all__ = ["main"]
