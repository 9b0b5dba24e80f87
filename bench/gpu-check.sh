#!/usr/bin/env bash
# GPU check of the native Hugging Face path (see bench/gpu_check.py): training throughput
# and MFU of a Qwen2.5-0.5B-shaped model, logit parity with transformers, the fp32-master
# update check, a LoRA step, and the worker itself under torchrun (1–2 GPU ranks). Python only;
# run from the repository root:
#
#   bash bench/gpu-check.sh               # GPU machine (PyTorch 2.x + CUDA), ≤ 8 minutes
#   bash bench/gpu-check.sh --cpu-smoke   # anywhere with PyTorch: tiny sizes, the same code
#
# Results: bench/results/gpu-check.json (smoke: gpu-check-cpu-smoke.json), also printed.
# PYTHON names the interpreter; by default the first of python3 and /usr/bin/python3 that
# imports torch.
set -u
cd "$(dirname "$0")/.."
export PYTHONDONTWRITEBYTECODE=1

python="${PYTHON:-}"
if [ -z "$python" ]; then
  for candidate in python3 /usr/bin/python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import torch' >/dev/null 2>&1; then
      python="$candidate"
      break
    fi
  done
fi
if [ -z "$python" ]; then
  echo "gpu-check: no Python with torch found (set PYTHON)" >&2
  exit 2
fi

# 8 minutes at most: the script stops starting parts after --budget-s (450 s by default)
# and writes its results after each part, so a hard stop loses only the part under way.
exec timeout --signal=TERM --kill-after=10 480 "$python" -u bench/gpu_check.py "$@"
