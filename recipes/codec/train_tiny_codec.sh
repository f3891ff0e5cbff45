#!/usr/bin/env bash
# Reproduce the embedded tiny codec (codec/pretrained/tiny, loaded by `--codec tiny`) from the
# stages of configs/recipes/codec/tiny_trained/:
#   1. vae, 2. semantic (AudioMAE features -> k-means), 3. decoder (acoustic encoder + VQ +
#   diffusion UNet), 4. vocoder (on the mels of the audio; independent of 1-3),
#   5. decoder_refine (stage 3's codec trained on with a wider pitch range),
#   6. vocoder_refine (stage 4's vocoder trained on the mels stage 5's decoder gives it),
#   7. decoder_unet (stage 5's UNet trained alone on its frozen encoder's codes, on partial
#      windows and clips at many levels; the tokens stay those of stage 5),
# then the float16 export of stage 7's codec with stage 6's vocoder, and a TRAINING.md summary
# (steps, final losses, wall time per stage, read from each stage's history.jsonl).
#
#   bash recipes/codec/train_tiny_codec.sh                  # stage outputs in outputs/tiny_codec
#   OUT=/data/tiny_codec bash recipes/codec/train_tiny_codec.sh
#
# Environment: OUT (stage outputs root, default outputs/tiny_codec), DEST (export folder, default
# codec/pretrained/tiny), SEMANTILM (the command, default `semantilm`), OVERRIDES (extra
# key=value overrides for every stage, space-separated, e.g. "train.max_steps=2" for a smoke run),
# PYTHON (the interpreter of the quality check appended to TRAINING.md, default python).
# A rerun resumes each training stage from its newest checkpoint; each stage's console output
# is appended to $OUT/<stage>.log as well. The shipped codec was trained with OMP_NUM_THREADS=1 (one
# thread per process) except stage 6 (two); other thread counts give slightly different sums.
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT="${OUT:-outputs/tiny_codec}"
DEST="${DEST:-codec/pretrained/tiny}"
SEMANTILM="${SEMANTILM:-semantilm}"
CONFIGS=configs/recipes/codec/tiny_trained
read -r -a EXTRA <<< "${OVERRIDES:-}"
mkdir -p "$OUT"

train_stage() {  # stage name, then extra overrides
    local stage=$1
    shift
    echo "== stage $stage -> $OUT/$stage"
    $SEMANTILM train --recipe codec --config "$CONFIGS/$stage.yaml" \
        --override "train.output_dir=$OUT/$stage" "$@" ${EXTRA[@]+"${EXTRA[@]}"} 2>&1 | tee -a "$OUT/$stage.log"
}

train_stage vae
train_stage semantic
train_stage decoder "codec.name=$OUT/semantic/codec" "codec.vae_from=$OUT/vae"
train_stage vocoder
train_stage decoder_refine "codec.name=$OUT/decoder/codec"
# stage 6 trains the vocoder inside the refined codec: put stage 4's vocoder (and sizes) into it
$SEMANTILM export-codec "$OUT/decoder_refine/codec" "$OUT/decoder_refine/joined" --dtype float32 --overwrite \
    --vocoder-from "$OUT/vocoder"
train_stage vocoder_refine "codec.name=$OUT/decoder_refine/joined"
train_stage decoder_unet "codec.name=$OUT/decoder_refine/codec"

$SEMANTILM export-codec "$OUT/decoder_unet/codec" "$DEST" --dtype float16 --name tiny --max-mb 5 --overwrite \
    --vocoder-from "$OUT/vocoder_refine" \
    --stages "$OUT/vae" "$OUT/semantic" "$OUT/decoder" "$OUT/vocoder" "$OUT/decoder_refine" "$OUT/vocoder_refine" \
    "$OUT/decoder_unet" \
    --command "bash recipes/codec/train_tiny_codec.sh"
"${PYTHON:-python}" benchmarks/codec_quality.py --codec "$DEST" >> "$DEST/TRAINING.md"
# The distilled decoder (1/2/4 steps, guidance folded in) of the exported codec, shipped beside it in fp16.
train_stage distill "codec.name=$DEST"
"${PYTHON:-python}" -c "import sys, torch; from codec.student import export_student; \
export_student(sys.argv[1], sys.argv[2], torch.float16)" "$OUT/distill/codec" "$DEST"
"${PYTHON:-python}" benchmarks/distilled_decoder.py --codec "$DEST" >> "$DEST/TRAINING.md"  # the gate: fails loudly
echo "== the tiny codec is in $DEST (load it with --codec tiny); summary: $DEST/TRAINING.md"
