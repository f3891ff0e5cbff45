#!/usr/bin/env bash
# The GPU measurements the CPU cannot give, in one run (about 10 minutes on one H200):
#   1. LM tokens/s: no guidance, two-call and one-forward guidance, then one-forward with a static
#      KV cache and with a static cache + compiled step (tiny and base-100m, batch 1 and 4);
#   2. the full-size r100 decoder on 10.24 s clips in fp32 and bf16 (DDIM 50, DPM-Solver++ 15);
#   3. the full-size r100 encoder, fp32 and bf16, 8 and 32 clips per call (random 10 s clips);
#   4. tokenisation of 10 s clips from disk to shards with the r100 codec (bare encode vs end to
#      end), in bf16 with its token agreement against fp32, then in fp32.
# Each part prints its own table and its wall time (RESULTS.md is written by run_all.py only; these
# are studies, quoted with their machine line where a document cites them). The default order puts first what the open measurements need most (4: the
# tokenisation throughput and bf16 agreement, 1: the LM speed settings); where one command may run
# only minutes, give each part its own run (PARTS=4, then PARTS=1, ...).
#
#     bash benchmarks/gpu_checks.sh                     # DEVICE=cuda; PARTS="4 1 2 3" to choose parts
#     DEVICE=cpu SMOKE=1 bash benchmarks/gpu_checks.sh  # the same commands on tiny sizes (a few minutes):
#                                                       # check the script before spending GPU time on it
set -u
cd "$(dirname "$0")/.."
DEVICE=${DEVICE:-cuda}
PARTS=${PARTS:-"4 1 2 3"}
PY=${PYTHON:-python}
status=0

if [ "${SMOKE:-0}" = 1 ]; then
    LM_SECONDS=0.2; LM_REPEATS=1; DEC_SECONDS=1; DEC_BATCHES="1"; DEC_STEPS=2; DEC_FAST=2; DEC_REPEATS=1
    DEC_EXTRA="--tiny --skip-quality"; ENC_SECONDS=1; ENC_BATCHES=2; TOK_CLIPS=4; TOK_SECONDS=1; TOK_BATCH=2
    TOK_WORKERS=1; TOK_CODEC=tiny
else
    LM_SECONDS=4; LM_REPEATS=2; DEC_SECONDS=10.24; DEC_BATCHES="1 8"; DEC_STEPS=50; DEC_FAST=15; DEC_REPEATS=2
    DEC_EXTRA=""; ENC_SECONDS=10; ENC_BATCHES=8,32; TOK_CLIPS=512; TOK_SECONDS=10; TOK_BATCH=32
    TOK_WORKERS=8; TOK_CODEC=r100
fi
# bf16 and fp16 are GPU settings: on the CPU the smoke run checks the float32 commands only
if [ "$DEVICE" = cpu ]; then HALF=""; else HALF=bfloat16; fi

run() {  # run one command, report its failure and wall time, and go on with the next
    echo "### $*"
    local start=$SECONDS
    "$@" || { echo "### FAILED ($?): $*"; status=1; }
    echo "### took $((SECONDS - start)) s"
}

"$PY" -c "import torch; print('# torch', torch.__version__, '|', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')"
for part in $PARTS; do
    case $part in
    1) run "$PY" benchmarks/generation.py --sections tokens --device "$DEVICE" --models tiny base-100m \
           --batches 1 4 --seconds "$LM_SECONDS" --repeats "$LM_REPEATS" --speeds static compile ;;
    2) for dtype in float32 $HALF; do
           # shellcheck disable=SC2086  # word splitting of the size lists is meant
           run "$PY" benchmarks/codec_decode.py --device "$DEVICE" --dtype "$dtype" --seconds "$DEC_SECONDS" \
               --batch-sizes $DEC_BATCHES --ddim-steps "$DEC_STEPS" --steps-list "$DEC_FAST" --skip-official \
               --repeats "$DEC_REPEATS" $DEC_EXTRA
       done ;;
    3) for dtype in float32 $HALF; do
           run "$PY" benchmarks/codec_encode.py --workload random --device "$DEVICE" --dtype "$dtype" \
               --batch-sizes "$ENC_BATCHES" --batch "${ENC_BATCHES##*,}" --clip-seconds "$ENC_SECONDS"
       done ;;
    4) for dtype in $HALF float32; do
           agreement=""; [ "$dtype" != float32 ] && agreement=--agreement
           run "$PY" benchmarks/tokenize_corpus.py --codec "$TOK_CODEC" --device "$DEVICE" --dtype "$dtype" \
               $agreement --clips "$TOK_CLIPS" --seconds "$TOK_SECONDS" --fixed-length \
               --batch-size "$TOK_BATCH" --num-workers "$TOK_WORKERS" --repeats 1
       done ;;
    *) echo "unknown part $part (1-4)"; status=1 ;;
    esac
done
exit $status
