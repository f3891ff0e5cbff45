"""Text-to-audio recipe: train a causal LM to write SemantiCodec tokens for a caption.

    accelerate launch --config_file configs/accelerate/1gpu.yaml recipes/text_to_audio/train.py \
        --config configs/recipes/text_to_audio/base_gpu.yaml [--override train.max_steps=1000 ...]

Single process without accelerate: ``python recipes/text_to_audio/train.py --config ...`` or
``semantilm train --config ...``. Rerunning the same command resumes from the newest checkpoint.
"""

import sys

from semantilm.cli.main import recipe_main

if __name__ == "__main__":
    sys.exit(recipe_main("text_to_audio"))
