#!/usr/bin/env bash
# The one prepared GPU check (issue 25), run on the device machine from the repository root after
# scripts/gpu_check_prepare.sh here:  run(command="bash scripts/gpu_check.sh", carry=[".gpu"], timeout_s=580)
# (the steps' limits add up to 540 s)
# Each step has its own time limit and the script goes on past a failed step; logs go to $OUT (or /tmp/gpu-check).
# Steps: the ml package's tests with CUDA; training, inference and Grad-CAM throughput; the ml CLI on CUDA (a short
# default-recipe run, a finetune of the shipped checkpoint, evaluation with ten-crop TTA, and label scoring) on the
# FER-2013 subset in .gpu/.
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
DEVICE=${DEVICE:-cuda}
PY=${PY:-python3}
CSV=.gpu/fer-subset.csv.gz
if [ -d .gpu/whl ] && [ -z "${NO_WHEELS:-}" ]; then  # NO_WHEELS=1: a dry run here, with the venv's packages
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl \
        || { echo "wheel install failed"; exit 1; }
    export PYTHONPATH=/tmp/site:$PWD
fi
declare -A RESULT
step() {  # step NAME SECONDS COMMAND...: runs it, logs to $OUT/NAME.log, records its exit status
    local name=$1 limit=$2; shift 2
    local start=$SECONDS
    echo "=== $name (limit ${limit}s): $*"
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    RESULT[$name]="rc=$rc $((SECONDS - start))s"
    tail -n 25 "$OUT/$name.log"
    echo "=== $name: ${RESULT[$name]}"
}
step env 30 bash -c "nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc; \
    $PY -c 'import torch, sys; print(sys.version.split()[0], torch.__version__, torch.cuda.is_available(), \
    torch.cuda.get_device_name() if torch.cuda.is_available() else \"-\")'"
# tests/conftest.py needs Django, which is not there: --confcutdir keeps pytest to tests/ml's own conftest.
ML_TEST_DEVICE=$DEVICE step tests 150 "$PY" -m pytest tests/ml -q -p no:cacheprovider --confcutdir=tests/ml -x --durations=5
step throughput 80 "$PY" benchmarks/bench_ml_throughput.py --device "$DEVICE" --steps 30 \
    --archs fer_vgg_m fer_vgg fer_cnn vgg19_transfer --cam-methods gradcam hirescam layercam
step inference 50 "$PY" benchmarks/bench_inference.py --device "$DEVICE" --seconds 2
step train_default 50 "$PY" -m ml train --csv "$CSV" --recipe default --epochs 4 --device "$DEVICE" --out /tmp/d4.pt
step finetune 40 "$PY" -m ml train --csv "$CSV" --recipe finetune --epochs 2 --device "$DEVICE" \
    --init-from ml/weights/default.pt --out /tmp/ft.pt
for tta in none flip tencrop; do
    step "evaluate_$tta" 20 "$PY" -m ml evaluate --checkpoint ml/weights/default.pt --csv "$CSV" --tta "$tta" \
        --device "$DEVICE"
done
step score_labels 80 "$PY" -m ml score-labels --csv "$CSV" --folds 2 --epochs 2 --device "$DEVICE" \
    --out "$OUT/scores.csv"
echo "=== summary"
for name in "${!RESULT[@]}"; do echo "$name ${RESULT[$name]}"; done | sort
