"""Audio continuation recipe: train a causal LM to continue SemantiCodec token streams.

    accelerate launch --config_file configs/accelerate/1gpu.yaml recipes/continuation/train.py \
        --config configs/recipes/continuation/lora_gpu.yaml [--override model.lora.r=16 ...]

Single process without accelerate: ``python recipes/continuation/train.py --config ...`` or
``semantilm train --config ...``. Rerunning the same command resumes from the newest checkpoint.
"""

import sys

from semantilm.cli.main import recipe_main

if __name__ == "__main__":
    sys.exit(recipe_main("continuation"))
