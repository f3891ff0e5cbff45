"""Codec recipe: train SemantiCodec's acoustic encoder, quantiser and diffusion UNet.

    accelerate launch --config_file configs/accelerate/cpu.yaml recipes/codec/train.py \
        --config configs/recipes/codec/tiny_cpu.yaml [--override train.max_steps=10 ...]

Single process: ``python recipes/codec/train.py --config ...`` or
``semantilm train --recipe codec --config ...``. Rerunning the same command resumes from the
newest checkpoint.
"""

import sys

from codec.training.recipe import load_codec_recipe_config, run_codec_recipe
from codec.training.trainer import CodecTrainResult
from semantilm.training.launch import recipe_script

TASK = "codec"


def train(config_path: str, overrides: list[str]) -> CodecTrainResult:
    """Read the codec recipe YAML (overrides applied) and train the stage it names."""
    config = load_codec_recipe_config(config_path, overrides)
    return run_codec_recipe(config)


if __name__ == "__main__":
    sys.exit(recipe_script(TASK, __doc__, train))
