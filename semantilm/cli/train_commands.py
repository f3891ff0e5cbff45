"""Training commands: train, and the entry points of recipes/*/train.py."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from semantilm.cli.common import CliError


def cmd_train(args: argparse.Namespace) -> int:
    from semantilm.training.recipe_config import RecipeConfig, load_config
    from semantilm.training.recipes import run_recipe

    if not Path(args.config).is_file():
        raise CliError(f"config {args.config!r} does not exist (see configs/recipes/).")
    task = _config_task(args.config)
    if (args.recipe == "codec") != (task == "codec") and args.recipe is not None:
        raise CliError(f"--recipe {args.recipe} but {args.config} is a {task} config; drop --recipe or use "
                       f"a config from configs/recipes/{args.recipe}/.")
    if task == "codec":
        return _run_codec_recipe(args.config, args.override)
    config = load_config(RecipeConfig, args.config, args.override)
    if args.recipe is not None and config.task != args.recipe:
        raise CliError(f"--recipe {args.recipe} but {args.config} is a {config.task} config; drop --recipe or use "
                       f"a config from configs/recipes/{args.recipe}/.")
    result = run_recipe(config)
    last = f", last loss {result.losses[-1][1]:.3f}" if result.losses else ""
    print(f"{config.task}: {result.global_step} steps on {result.num_examples} examples{last}; model in {result.output_dir}")
    return 0



def _config_task(path: str) -> object:
    """The ``task`` key of a recipe YAML (None when it has none or is not a mapping)."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError:
        return None  # load_config reports it
    return data.get("task") if isinstance(data, dict) else None


def _run_codec_recipe(config_path: str, overrides: list[str]) -> int:
    from accelerate import PartialState

    from codec.training.recipe import load_codec_recipe_config, run_codec_recipe

    config = load_codec_recipe_config(config_path, overrides)
    result = run_codec_recipe(config)
    if PartialState().is_main_process:
        last = f", last loss {result.history[-1][1]['loss']:.4f}" if result.history else ""
        print(f"codec: {result.global_step} steps{last}; codec in {result.codec_dir}")
    return 0


def _recipe_args(task: str, description: str, override_example: str, argv: list[str] | None) -> argparse.Namespace:
    """The command line shared by every ``recipes/<task>/train.py``; also sets up logging."""
    parser = argparse.ArgumentParser(prog=f"recipes/{task}/train.py", description=description)
    parser.add_argument("--config", required=True, help=f"recipe YAML, e.g. configs/recipes/{task}/tiny_cpu.yaml")
    parser.add_argument("--override", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help=f"change config values, e.g. {override_example}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    return args


def _run_recipe_reporting_errors(task: str, run) -> int:
    """Run a recipe; a config or usage error exits 2, a failed run 1, each with a one-line message."""
    from semantilm.training.recipe_config import ConfigError

    try:
        return run()
    except (ConfigError, FileNotFoundError) as err:
        print(f"{task} recipe: error: {err}", file=sys.stderr)
        return 2
    except (ValueError, TypeError) as err:
        print(f"{task} recipe: error: {err}", file=sys.stderr)
        return 1


def codec_recipe_main(argv: list[str] | None = None) -> int:
    """Entry point of ``recipes/codec/train.py``: ``--config FILE [--override key=value ...]``."""
    args = _recipe_args(
        "codec", "The codec training recipe (acoustic encoder + diffusion decoder); run it with `accelerate launch`.",
        "train.max_steps=100", argv,
    )
    return _run_recipe_reporting_errors("codec", lambda: _run_codec_recipe(args.config, args.override))


def recipe_main(task: str, argv: list[str] | None = None) -> int:
    """Entry point of ``recipes/<task>/train.py``: ``--config FILE [--override key=value ...]``."""
    args = _recipe_args(
        task, f"The {task} training recipe; run it with `accelerate launch` for several processes.",
        "train.max_steps=100 data.dataset=synthetic", argv,
    )

    def run() -> int:
        from accelerate import PartialState

        from semantilm.training.recipe_config import RecipeConfig, load_config
        from semantilm.training.recipes import run_recipe

        result = run_recipe(load_config(RecipeConfig, args.config, args.override), task=task)
        if PartialState().is_main_process:
            last = f", last loss {result.losses[-1][1]:.3f}" if result.losses else ""
            print(f"{task}: {result.global_step} steps on {result.num_examples} examples{last}; "
                  f"model in {result.output_dir}")
        return 0

    return _run_recipe_reporting_errors(task, run)


def add_commands(sub: argparse._SubParsersAction, epilog: str) -> None:
    """Register this group's sub-commands."""
    p = sub.add_parser("train", help="run a training recipe in this process (accelerate launch for many GPUs)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=epilog)
    p.add_argument("--config", required=True, help="recipe YAML, e.g. configs/recipes/text_to_audio/tiny_cpu.yaml")
    p.add_argument("--recipe", default=None, choices=("text_to_audio", "continuation", "codec"),
                   help="check that the config is for this recipe (default: the config's task)")
    p.add_argument("--override", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="change config values, e.g. train.max_steps=100 codec.name=tiny-random")
    p.set_defaults(func=cmd_train)
