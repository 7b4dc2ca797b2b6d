#!/usr/bin/env bash
# One job that exercises and measures hilobench on a GPU, within a fixed wall time:
#   1. the test suite: the CUDA tests (tests/measure/test_cuda.py) and, at the same time, every other
#      test in parallel workers (those run on the CPU, so they cannot disturb the CUDA tests);
#   2. on a quiet machine: the single-layer table and the ImageNet table (batch 64, inference
#      and a training step) in float32 and with float16 autocast, then the fused-vs-reference
#      speed-up of every attention.
# Each step gets what is left of the wall time; a suite stopped at its limit keeps every row it
# measured. Everything lands in OUTDIR (logs, run directories), and after every step in one
# tarball of them (TARBALL, default OUTDIR/results.tgz), so a job killed from outside still
# leaves what it measured.
#
#   bash benchmarks/gpu_measure.sh OUTDIR [SECONDS]
#
# Environment: PYTHON (default python3), DEVICE (default cuda), BUDGET (seconds per case,
# default 1.5), JOBS (parallel test workers, default 12), ALL_TESTS (default tests),
# EXTRA_PYTHONPATH (prepended).
set -u
OUTDIR=${1:?usage: gpu_measure.sh OUTDIR [SECONDS]}
TOTAL=${2:-560}
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
BUDGET=${BUDGET:-1.5}
JOBS=${JOBS:-12}
ALL_TESTS=${ALL_TESTS:-tests}
TARBALL=${TARBALL:-$OUTDIR/results.tgz}
START=$(date +%s)
mkdir -p "$OUTDIR/runs"
export PYTHONUNBUFFERED=1 HILOBENCH_CACHE_DIR="$OUTDIR/cache"
export PYTHONPATH="${EXTRA_PYTHONPATH:+$EXTRA_PYTHONPATH:}$PWD${PYTHONPATH:+:$PYTHONPATH}"

left() { echo $((TOTAL - ($(date +%s) - START))); }
# step NAME CAP CMD...: run CMD with at most min(CAP, time left - 25 s), log to OUTDIR/NAME.log
step() {
  local name=$1 cap=$2 t
  shift 2
  t=$(left); t=$((t - 25)); [ "$t" -gt "$cap" ] && t=$cap
  if [ "$t" -lt 10 ]; then echo "== $name: skipped, no time left"; return 0; fi
  echo "== $name (limit ${t}s, $(left)s left)"
  timeout -s TERM -k 15 "$t" "$@" >"$OUTDIR/$name.log" 2>&1
  echo "   exit $? after $(($(date +%s) - START))s; $(tail -n 1 "$OUTDIR/$name.log")"
  pack
}
pack() { (cd "$OUTDIR" && tar -czf "$TARBALL.part" runs ./*.log device.txt && mv "$TARBALL.part" "$TARBALL"); }
# one suite on the device, rows saved as they land (counts are the CPU runs' business)
suite() {
  echo "$PY" -m hilobench suite run "$1" --device "$DEVICE" --budget "$BUDGET" --no-isolate \
    --set dtype="$2" --set count=false --out "$OUTDIR/runs/$1_$2" --format md
}

{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv || true
  "$PY" -c "import torch, sys; print(sys.version.split()[0], torch.__version__, \
torch.version.cuda, torch.cuda.is_available() and torch.cuda.get_device_name())"
} >"$OUTDIR/device.txt" 2>&1
cat "$OUTDIR/device.txt"

timeout -s TERM -k 10 300 "$PY" -m pytest -q -p no:cacheprovider -n "$JOBS" --timeout 240 $ALL_TESTS \
  --ignore tests/measure/test_cuda.py >"$OUTDIR/pytest_all.log" 2>&1 &
ALL=$!
step pytest_cuda 200 "$PY" -m pytest -q -p no:cacheprovider -rs --timeout 240 tests/measure/test_cuda.py
wait $ALL
echo "== pytest_all exit $?: $(tail -n 1 "$OUTDIR/pytest_all.log")"
pack

step layers_float32 90 $(suite attention_layers float32)
step imagenet_float32 170 $(suite paper_imagenet float32)
step impl_speedup 100 "$PY" benchmarks/impl_speedup.py --device "$DEVICE" --budget 1 \
  --tokens 14x14:64,56x56:8 --model litv2_s --batch 64 --out "$OUTDIR/runs/impl_speedup"
step layers_float16 90 $(suite attention_layers float16)
step imagenet_float16 170 $(suite paper_imagenet float16)
echo "== done after $(($(date +%s) - START))s"
