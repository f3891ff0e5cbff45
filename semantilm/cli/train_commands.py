"""Training commands: train."""

from __future__ import annotations

import argparse
from pathlib import Path

from semantilm.cli.common import CliError


def _config_task(path: str, overrides: list[str]) -> object:
    """The ``task`` of a recipe YAML after the overrides (None when it has none or is not a mapping)."""
    import yaml

    from plumbing.config_file import apply_overrides

    try:
        data = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError:
        return None  # loading the config reports it
    return apply_overrides(data, overrides).get("task") if isinstance(data, dict) else None


def cmd_train(args: argparse.Namespace) -> int:
    from accelerate import PartialState

    from semantilm.resources import resolve_config
    from semantilm.training.launch import recipe_summary, run_recipe_file

    try:  # a path, or a shipped recipe (configs/recipes/text_to_audio/tiny_cpu.yaml, text_to_audio/tiny_cpu)
        args.config = str(resolve_config(args.config, "recipes", label="--config"))
    except OSError as err:
        raise CliError(str(err)) from None
    task = _config_task(args.config, args.override)
    if args.recipe is not None and task is not None and task != args.recipe:
        raise CliError(f"--recipe {args.recipe} but {args.config} is a {task} config; drop --recipe or use "
                       f"a config from configs/recipes/{args.recipe}/.")
    task = task if isinstance(task, str) else args.recipe
    result = run_recipe_file(args.config, args.override, task=task)
    if PartialState().is_main_process:
        print(recipe_summary(task or "train", result))
    return 0


def add_commands(sub: argparse._SubParsersAction, epilog: str) -> None:
    """Register this group's sub-commands."""
    p = sub.add_parser("train", help="run a training recipe in this process (accelerate launch for many GPUs)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=epilog)
    p.add_argument("--config", required=True, help="recipe YAML, e.g. configs/recipes/text_to_audio/tiny_cpu.yaml "
                   "(the shipped recipes are found from any folder, also as text_to_audio/tiny_cpu)")
    p.add_argument("--recipe", default=None, choices=("text_to_audio", "continuation", "codec"),
                   help="check that the config is for this recipe (default: the config's task)")
    p.add_argument("--override", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="change config values, e.g. train.max_steps=100 codec.name=tiny-random")
    p.set_defaults(func=cmd_train)
