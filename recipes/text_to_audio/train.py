"""Text-to-audio recipe: train a causal LM to write SemantiCodec tokens for a caption.

    accelerate launch --config_file configs/accelerate/1gpu.yaml recipes/text_to_audio/train.py \
        --config configs/recipes/text_to_audio/base_gpu.yaml [--override train.max_steps=1000 ...]

Single process without accelerate: ``python recipes/text_to_audio/train.py --config ...`` or
``semantilm train --config ...``. Rerunning the same command resumes from the newest checkpoint.
"""

import sys

from plumbing.config_file import load_config
from semantilm.training.launch import recipe_script
from semantilm.training.recipe_config import RecipeConfig
from semantilm.training.recipes import RecipeResult, run_recipe

TASK = "text_to_audio"


def train(config_path: str, overrides: list[str]) -> RecipeResult:
    """Read the recipe YAML (overrides applied), tokenise the captioned corpus and train the LM."""
    config = load_config(RecipeConfig, config_path, overrides)
    return run_recipe(config, task=TASK)


if __name__ == "__main__":
    sys.exit(recipe_script(TASK, __doc__, train))
