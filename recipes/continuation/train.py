"""Audio continuation recipe: train a causal LM to continue SemantiCodec token streams.

    accelerate launch --config_file configs/accelerate/1gpu.yaml recipes/continuation/train.py \
        --config configs/recipes/continuation/lora_gpu.yaml [--override model.lora.r=16 ...]

Single process without accelerate: ``python recipes/continuation/train.py --config ...`` or
``semantilm train --config ...``. Rerunning the same command resumes from the newest checkpoint.
"""

import sys

from plumbing.config_file import load_config
from semantilm.training.launch import recipe_script
from semantilm.training.recipe_config import RecipeConfig
from semantilm.training.recipes import RecipeResult, run_recipe

TASK = "continuation"


def train(config_path: str, overrides: list[str]) -> RecipeResult:
    """Read the recipe YAML (overrides applied), tokenise the corpus and train the LM to continue it."""
    config = load_config(RecipeConfig, config_path, overrides)
    return run_recipe(config, task=TASK)


if __name__ == "__main__":
    sys.exit(recipe_script(TASK, __doc__, train))
