"""Codec recipe: train SemantiCodec's acoustic encoder, quantiser and diffusion UNet.

    accelerate launch --config_file configs/accelerate/cpu.yaml recipes/codec/train.py \
        --config configs/recipes/codec/tiny_cpu.yaml [--override train.max_steps=10 ...]

Single process: ``python recipes/codec/train.py --config ...`` or
``semantilm train --recipe codec --config ...``. Rerunning the same command resumes from the
newest checkpoint.
"""

import sys

from semantilm.cli.main import codec_recipe_main

if __name__ == "__main__":
    sys.exit(codec_recipe_main())
