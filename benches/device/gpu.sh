#!/usr/bin/env bash
# The one device command for the GPU issue (#19): GPU tests, then `python -m benches gpu`, results under $OUT.
# In this repo's workplace: bash ../shared/device/pack.sh; then the device tool runs, with carry [".device-carry"]:
#   bash benches/device/gpu.sh
# Anywhere else (a GPU box with this repo installed: pip install -e '.[dev]'): NO_CARRY=1 OUT=out bash benches/device/gpu.sh
# STEPS defaults to 16, the timed steps of the stored benches/results/gpu.json.
set -uo pipefail
[ -n "${NO_CARRY:-}" ] || source .device-carry/on_device.sh || exit 3
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,memory.used --format=csv | tee "$OUT/nvidia_smi.txt"
timeout "${TEST_S:-150}" python3 -m pytest -q -rA -o addopts="" -p no:cacheprovider tests/test_gpu.py 2>&1 \
  > "$OUT/gpu_tests.txt"; tail -4 "$OUT/gpu_tests.txt"
timeout "${BENCH_S:-330}" python3 -m benches gpu --repeats "${REPEATS:-1}" --steps "${STEPS:-16}" --parts-gpu ${PARTS:-steps channels find} \
  2>&1 | grep -v "^💡\|LOCAL_RANK\|GPU available\|TPU available\|HPU available" | tee "$OUT/bench.log" | tail -40
cp benches/results/gpu.json "$OUT/" 2>/dev/null; cp benches/results/gpu.json benches/results/gpu_bench.json 2>/dev/null
timeout "${SMOKE_S:-150}" python3 -m benches gpu --resume --parts-gpu smokes --smoke ${SMOKES:-} 2>&1 | tail -12 | tee "$OUT/smokes.log"
cp benches/results/gpu.json docs/benchmarks.md "$OUT/" 2>/dev/null
true
