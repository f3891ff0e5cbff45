"""Running a recipe from a command line: the shared arguments, exit codes and result line of
``recipes/*/train.py`` and ``semantilm train``."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from semantilm.training.recipe_config import RecipeConfig
from semantilm.training.recipes import run_recipe

__all__ = ["run_recipe_file", "recipe_summary", "recipe_parser", "recipe_script"]


def run_recipe_file(path: str | os.PathLike, overrides: list[str] | tuple[str, ...] = (), task: str | None = None) -> Any:
    """Read a recipe YAML (``key=value`` overrides applied) and run it in this process.

    task: "codec" runs the codec recipe (returns a ``CodecTrainResult``); otherwise the LM recipe
    (``RecipeResult``), whose config must then be for ``task`` when it is given.
    """
    from semantilm.resources import resolve_config

    path = resolve_config(path, "recipes", label="--config")
    if task == "codec":
        from codec.training import load_codec_recipe_config, run_codec_recipe

        return run_codec_recipe(load_codec_recipe_config(path, overrides))
    from semantilm.training.recipe_config import load_config

    return run_recipe(load_config(RecipeConfig, path, overrides), task=task)


def recipe_summary(task: str, result: Any) -> str:
    """One line about a finished run of the LM recipes (``RecipeResult``) or the codec recipe."""
    if hasattr(result, "codec_dir"):
        last = f", last loss {result.history[-1][1]['loss']:.4f}" if result.history else ""
        return f"{task}: {result.global_step} steps{last}; codec in {result.codec_dir}"
    last = f", last loss {result.losses[-1][1]:.3f}" if result.losses else ""
    line = f"{task}: {result.global_step} steps on {result.num_examples} examples{last}; model in {result.output_dir}"
    judged = getattr(result, "generation_metrics", None)
    if judged:  # eval.generation: the headline numbers, the rest in generation_metrics.json
        shown = ", ".join(f"{k.removeprefix('generation_')} {v:.4f}" for k, v in judged.items()
                          if k in ("generation_fad", "generation_kl", "generation_clap_score"))
        line += f"; generated audio: {shown} ({result.output_dir}/generation_metrics.json)"
    return line


def recipe_parser(task: str, description: str | None) -> Any:
    """The arguments of ``recipes/<task>/train.py``: ``--config FILE [--override KEY=VALUE ...] [-v]``."""
    import argparse

    parser = argparse.ArgumentParser(prog=f"recipes/{task}/train.py", description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help=f"recipe YAML, e.g. configs/recipes/{task}/tiny_cpu.yaml")
    parser.add_argument("--override", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="change config values, e.g. train.max_steps=100")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    return parser


def recipe_script(task: str, description: str | None, train: Callable[[str, list[str]], Any],
                  argv: list[str] | None = None) -> int:
    """Run ``train(config_path, overrides)`` from a recipe script's command line; returns the exit code.

    The result is summarised by the main process only. Exit codes: 0 done; 2 a config error
    (bad key or value, missing file); 1 the run failed. Errors print one line, no traceback.
    """
    import sys

    from plumbing.config_file import ConfigError

    args = recipe_parser(task, description).parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        result = train(args.config, args.override)
    except (ConfigError, FileNotFoundError) as err:
        print(f"{task} recipe: error: {err}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, OSError) as err:
        print(f"{task} recipe: error: {err}", file=sys.stderr)
        return 1
    from accelerate import PartialState

    if PartialState().is_main_process:
        print(recipe_summary(task, result))
    return 0
