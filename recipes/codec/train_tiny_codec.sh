#!/usr/bin/env bash
# Reproduce the embedded tiny codec (codec/pretrained/tiny, loaded by `--codec tiny`):
# the four stages of configs/recipes/codec/tiny_trained/ (vae, semantic, decoder, and the
# vocoder, which is independent of the other three: the decoder stage never runs it), then the
# float16 export of the decoder stage's codec with the vocoder stage's vocoder, and a TRAINING.md
# summary (steps, final losses, wall time
# per stage, read from each stage's history.jsonl).
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
# thread per process); other thread counts give slightly different floating-point sums.
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT="${OUT:-outputs/tiny_codec}"
DEST="${DEST:-codec/pretrained/tiny}"
SEMANTILM="${SEMANTILM:-semantilm}"
CONFIGS=configs/recipes/codec/tiny_trained
read -r -a EXTRA <<< "${OVERRIDES:-}"
mkdir -p "$OUT"

for stage in vae semantic decoder vocoder; do
    overrides=("train.output_dir=$OUT/$stage")
    if [ "$stage" = decoder ]; then
        overrides+=("codec.name=$OUT/semantic/codec" "codec.vae_from=$OUT/vae")
    fi
    echo "== stage $stage -> $OUT/$stage"
    $SEMANTILM train --recipe codec --config "$CONFIGS/$stage.yaml" \
        --override "${overrides[@]}" ${EXTRA[@]+"${EXTRA[@]}"} 2>&1 | tee -a "$OUT/$stage.log"
done

$SEMANTILM export-codec "$OUT/decoder/codec" "$DEST" --dtype float16 --name tiny --max-mb 5 \
    --vocoder-from "$OUT/vocoder" \
    --stages "$OUT/vocoder" "$OUT/vae" "$OUT/semantic" "$OUT/decoder" \
    --command "bash recipes/codec/train_tiny_codec.sh"
"${PYTHON:-python}" benchmarks/codec_quality.py --codec "$DEST" >> "$DEST/TRAINING.md"
echo "== the tiny codec is in $DEST (load it with --codec tiny); summary: $DEST/TRAINING.md"
