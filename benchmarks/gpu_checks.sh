#!/usr/bin/env bash
# The GPU measurements the CPU cannot give, in one run (about 10 minutes on one H200):
#   1. LM tokens/s: no guidance, two-call and one-forward guidance, then one-forward with a static
#      KV cache and with a static cache + compiled step (tiny and base-100m, batch 1 and 4);
#   2. the full-size r100 decoder on 10.24 s clips in fp32 and bf16 (DDIM 50, DPM-Solver++ 15);
#   3. the full-size r100 encoder, fp32 and bf16, 8 and 32 clips per call (random 10 s clips);
#   4. tokenisation of 10 s clips from disk to shards with the r100 codec (bare encode vs end to end).
# Each part prints its own table; copy them with the machine line into benchmarks/RESULTS.md.
#
#     bash benchmarks/gpu_checks.sh              # DEVICE=cuda; PARTS="1 2 3 4" to choose parts
set -u
cd "$(dirname "$0")/.."
DEVICE=${DEVICE:-cuda}
PARTS=${PARTS:-"1 2 3 4"}
PY=${PYTHON:-python}
status=0

run() {  # run one part, report its failure and go on with the next
    echo "### $*"
    "$@" || { echo "### FAILED ($?): $*"; status=1; }
}

"$PY" -c "import torch; print('# torch', torch.__version__, '|', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')"
for part in $PARTS; do
    case $part in
    1) run "$PY" benchmarks/generation.py --sections tokens --device "$DEVICE" --models tiny base-100m \
           --batches 1 4 --seconds 4 --repeats 2 --speeds static compile ;;
    2) for dtype in float32 bfloat16; do
           run "$PY" benchmarks/codec_decode.py --device "$DEVICE" --dtype "$dtype" --seconds 10.24 \
               --batch-sizes 1 8 --ddim-steps 50 --steps-list 15 --skip-official --repeats 2
       done ;;
    3) for dtype in float32 bfloat16; do
           run "$PY" benchmarks/codec_encode.py --workload random --device "$DEVICE" --dtype "$dtype" \
               --batch-sizes 8,32 --batch 32 --clip-seconds 10
       done ;;
    4) run "$PY" benchmarks/tokenize_corpus.py --codec r100 --device "$DEVICE" --clips 256 --seconds 10 \
           --batch-size 32 --num-workers 8 --repeats 1 ;;
    *) echo "unknown part $part (1-4)"; status=1 ;;
    esac
done
exit $status
