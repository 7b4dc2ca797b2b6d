#!/usr/bin/env bash
# One bounded GPU session for issue 24 (precision policy, bound, CUDA graphs, energy, profile on
# CUDA, agreement with timm). Every step runs under `timeout`; the whole script stops by TOTAL
# seconds (default 530, under 9 minutes); a step cut at its limit keeps the rows it wrote.
# Everything lands in results/gpu_<card>/ (card from the GPU's name, e.g. h100, h200):
#
#   device.txt                 GPU, driver, torch, CUDA (the torch that ran everything)
#   pytest_cuda.log            tests/measure/test_cuda.py (the CUDA paths, old and new)
#   vs_timm/                   benchmarks/vs_timm.py: timm's method vs hilobench, float32 policy
#   profile/<model>/           hilobench profile of LITv2-S, PVT-S, Swin-T, ResNet-50 (batch 64)
#   attention_layers_<dtype>/  the single-layer table in float32, tf32, float16
#   attention_layers_graphs_<dtype>/  the same with --cuda-graphs (float32, float16)
#   paper_imagenet_<dtype>/    the ImageNet table, inference, float32, tf32, float16
#   *.log                      each step's output
#
#   bash benchmarks/gpu_session.sh              # on the GPU machine, from the repository root
#   MODE=cpu bash benchmarks/gpu_session.sh     # CPU smoke run: float32 steps only, tiny filters
#   MODE=print bash benchmarks/gpu_session.sh   # print the GPU commands, run nothing
#
# Environment: PYTHON (default python3), TOTAL (seconds, default 530), BUDGET (seconds per
# case, default 0.4; the ImageNet table 0.25), OUT (default results/gpu_<card>, results/cpu_smoke in MODE=cpu).
set -u
MODE=${MODE:-gpu}
PY=${PYTHON:-python3}
TOTAL=${TOTAL:-530}
BUDGET=${BUDGET:-0.4}
IMAGENET_BUDGET=${IMAGENET_BUDGET:-0.25}
START=$(date +%s)
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if [ "$MODE" = gpu ] || [ "$MODE" = print ]; then
  DEVICE=cuda
  CARD="<card>"
  [ "$MODE" = gpu ] && { CARD=$("$PY" -c "import torch; n = torch.cuda.get_device_name(); \
print(n.lower().replace('nvidia', '').split()[0])" 2>/dev/null) || CARD=unknown; }
  OUT=${OUT:-results/gpu_$CARD}
  DTYPES="float32 tf32 float16"
  GRAPH_DTYPES="float32 float16"
  LAYERS=""                    # every attention of the table
  MODELS_FILTER=""             # every backbone of the table
  PROFILE_BATCH=64
  TIMM_ARGS="--batch 64 --warmup 10 --iters 40 --budget 2"
elif [ "$MODE" = cpu ]; then
  DEVICE=cpu
  OUT=${OUT:-results/cpu_smoke}
  DTYPES="float32"             # tf32 and float16 are CUDA-only (refused on the CPU)
  GRAPH_DTYPES=""              # --cuda-graphs is CUDA-only
  LAYERS="hilo,msa"
  MODELS_FILTER="resnet50"
  PROFILE_BATCH=1
  TIMM_ARGS="--batch 1 --warmup 1 --iters 2 --budget 0.5 --models resnet50"
  BUDGET=0.2 IMAGENET_BUDGET=0.2
else
  echo "MODE must be gpu, cpu or print, got '$MODE'" >&2
  exit 2
fi
[ "$MODE" != print ] && mkdir -p "$OUT"
export HILOBENCH_CACHE_DIR="$OUT/cache"

left() { echo $((TOTAL - ($(date +%s) - START))); }
# step NAME CAP CMD...: CMD under timeout min(CAP, time left - 10 s), output in OUT/NAME.log
step() {
  local name=$1 cap=$2 t rc
  shift 2
  if [ "$MODE" = print ]; then echo "[$name, ≤${cap}s] $*"; return 0; fi
  t=$(left); t=$((t - 10)); [ "$t" -gt "$cap" ] && t=$cap
  if [ "$t" -lt 5 ]; then echo "== $name: skipped, no time left"; return 0; fi
  echo "== $name (limit ${t}s, $(left)s left)"
  timeout -s TERM -k 5 "$t" "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  echo "   exit $rc after $(($(date +%s) - START))s: $(tail -n 1 "$OUT/$name.log")"
}
# suite NAME DTYPE [FILTER]: one suite's cases on the device, inference, no MAC counting
suite() {
  local f=()
  [ -n "${3:-}" ] && f=(--filter "$3")
  echo "$PY" -m hilobench suite run "$1" --device "$DEVICE" --budget "$BUDGET" --no-isolate \
    --set dtype="$2" --set count=false --set mode=infer "${f[@]}" \
    --out "$OUT/$(basename "$1" .yaml)_$2" --format md
}

if [ "$MODE" != print ]; then
  {
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>/dev/null
    "$PY" -c "import sys, torch; print(sys.version.split()[0], torch.__version__, \
torch.version.cuda, torch.cuda.is_available() and torch.cuda.get_device_name())"
  } >"$OUT/device.txt" 2>&1
  cat "$OUT/device.txt"
fi

# 1. the CUDA tests (skipped on a CPU, where they prove nothing)
[ "$DEVICE" = cuda ] && step pytest_cuda 80 "$PY" -m pytest -q -p no:cacheprovider -rs \
  -x --timeout 90 tests/measure/test_cuda.py
# 2. agreement with timm's own method, same models, batch, size and precision policy
# shellcheck disable=SC2086
step vs_timm 70 "$PY" benchmarks/vs_timm.py --device "$DEVICE" --img-size 224 $TIMM_ARGS \
  --dtype float32 --out "$OUT/vs_timm"
# 3. where each model's time goes, kernels included
for m in litv2_s pvt_s swin_t resnet50; do
  if [ "$MODE" = cpu ] && [ "$m" != resnet50 ]; then continue; fi
  step "profile_$m" 18 "$PY" -m hilobench profile "$m" --device "$DEVICE" \
    --batch "$PROFILE_BATCH" --steps 3 --depth 1 --out "$OUT/profile/$m" --format md
done
# 4. the single-layer table under each precision policy, then with CUDA graphs
for d in $DTYPES; do
  # shellcheck disable=SC2046
  step "layers_$d" 35 $(suite attention_layers "$d" "$LAYERS")
done
if [ -n "$GRAPH_DTYPES" ]; then
  # the shipped suite with cuda_graphs on for every case (a knob, so not a --set field)
  [ "$MODE" != print ] && sed -e 's/^defaults:$/defaults:\n  cuda_graphs: true/' \
    -e 's/^name: attention_layers$/name: attention_layers_graphs/' \
    hilobench/data/suites/attention_layers.yaml >"$OUT/attention_layers_graphs.yaml"
  for d in $GRAPH_DTYPES; do
    # shellcheck disable=SC2046
    step "layers_graphs_$d" 35 $(suite "$OUT/attention_layers_graphs.yaml" "$d" "$LAYERS")
  done
fi
# 5. the ImageNet table, inference, under each precision policy
BUDGET=$IMAGENET_BUDGET
for d in $DTYPES; do
  # shellcheck disable=SC2046
  step "imagenet_$d" 45 $(suite paper_imagenet "$d" "$MODELS_FILTER")
done
echo "== done after $(($(date +%s) - START))s; results in $OUT"
