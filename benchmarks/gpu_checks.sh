#!/usr/bin/env bash
# The CUDA checks and GPU benchmarks of a session that is lent a GPU (docs/benchmarks.md records the last run).
#   bash benchmarks/gpu_checks.sh OUTDIR
# Needs art_purify importable (installed, or the repository root on PYTHONPATH) and a CUDA device.
set -euo pipefail
out=${1:?usage: gpu_checks.sh OUTDIR}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
python3 - <<'PY' | tee "$out/machine.txt"
import platform, torch, diffusers, art
print("python", platform.python_version(), "| torch", torch.__version__, "| CUDA", torch.version.cuda,
      "| diffusers", diffusers.__version__, "| ART", art.__version__)
print("device", torch.cuda.get_device_name(0), "|", torch.cuda.get_device_properties(0).total_memory // 2**20, "MiB")
PY
python3 -m pytest tests/test_cuda.py -q -p no:cacheprovider 2>&1 | tee "$out/cuda_tests.log"
python3 benchmarks/bench_diffusion.py --unet cifar10 --batch 32 --device cuda --repeats 5 \
  --json "$out/bench_cifar10.json" 2>&1 | tee "$out/bench_cifar10.log"
python3 benchmarks/bench_diffusion.py --unet fashion-mnist --batch 16 --device cuda --repeats 5 \
  --json "$out/bench_fmnist.json" 2>&1 | tee "$out/bench_fmnist.log"
python3 benchmarks/bench_reconstruction_search.py --batch 32 --device cuda --steps 5 10 20 --nb-noise 2 --repeats 3 \
  --modes purify exact_ckpt exact_nockpt truncated --json "$out/bench_search.json" 2>&1 | tee "$out/bench_search.log"
python3 benchmarks/bench_scale.py --device cuda --batch 128 --eot 20 --iters 2 --peak-tflops 989 --peak-tflops-float32 495 \
  --options float32,bfloat16,bfloat16+channels_last,bfloat16+channels_last+compile --ranks 0 \
  --out "$out/bench_scale.json" 2>&1 | tee "$out/bench_scale.log"
