#!/usr/bin/env bash
# The CUDA checks and GPU benchmarks of a session that is lent a GPU (docs/benchmarks.md records the last run).
#   BUDGET_S=480 bash benchmarks/gpu_checks.sh OUTDIR
# Needs art_purify importable (installed, or the repository root on PYTHONPATH) and a CUDA device.
#
# A lent GPU comes with about 15 minutes of device time, machine start included, and at most 10 minutes per command.
# So the steps run in order of what is still unmeasured, each under its own time limit and all under BUDGET_S
# seconds (default 480): a step that fails or runs out of time is logged and the next one runs; a step with less
# than 20 s left is skipped. Every step writes its log (and JSON rows as they are measured) under OUTDIR, so a
# stopped run still returns what it finished. `summary.txt` lists each step's exit status and time.
#
# Sizes: PGD-EOT through the heterogeneous defence on the 35.7 M-parameter CIFAR-10 UNet costs about 557 GFLOP per
# image, EOT sample and iteration (40 UNet calls and the 2-call surrogate gradient), 0.027 s on an H100 in float32
# (2026-11-23). Batch 32 x EOT 4 (128 samples per defence call, about 6 GiB in float32) keeps one option under a
# minute; batch 128 x EOT 4 shows whether larger batches fill the GPU. Batch x EOT = 2,560 (the paper's 20 EOT
# samples at batch 128) would need about 120 GiB in float32.
set -uo pipefail
out=${1:?usage: gpu_checks.sh OUTDIR}
budget=${BUDGET_S:-480}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
deadline=$((SECONDS + budget))
: > "$out/summary.txt"

step() {  # step NAME LIMIT_S COMMAND...: run COMMAND for at most LIMIT_S seconds (and within the budget)
    local name=$1 limit=$2 left rc start
    shift 2
    left=$((deadline - SECONDS))
    if [ "$left" -lt 20 ]; then
        echo "$name: skipped (budget spent)" | tee -a "$out/summary.txt"
        return 0
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    start=$SECONDS
    echo "== $name (limit ${limit} s)"
    timeout --signal=INT --kill-after=15 "$limit" "$@" > "$out/$name.log" 2>&1
    rc=$?
    tail -n 25 "$out/$name.log"
    echo "$name: rc $rc in $((SECONDS - start)) s$([ "$rc" -eq 124 ] && echo ' (time limit)')" | tee -a "$out/summary.txt"
}

step machine 60 python3 -c '
import platform, torch, diffusers, art
print("python", platform.python_version(), "| torch", torch.__version__, "| CUDA", torch.version.cuda,
      "| diffusers", diffusers.__version__, "| ART", art.__version__)
print("device", torch.cuda.get_device_name(0), "|", torch.cuda.get_device_properties(0).total_memory // 2**20, "MiB")'
step cuda_tests 150 python3 -m pytest tests/test_cuda.py -q -p no:cacheprovider
scale=(python3 benchmarks/bench_scale.py --device cuda --iters 2 --peak-tflops 989 --peak-tflops-float32 495 --ranks 0)
# issue 18: the speed options against float32, measured together in one process
step scale_options 180 "${scale[@]}" --batch 32 --eot 4 --options float32,bfloat16,bfloat16+channels_last,float16 \
    --out "$out/scale_options.json"
# issue 18: does a 4x larger batch fill the GPU better?
step scale_batch128 120 "${scale[@]}" --batch 128 --eot 4 --options bfloat16+channels_last \
    --out "$out/scale_batch128.json"
# issue 18: torch.compile of the UNet (its compilation time is the warm-up)
step scale_compile 180 "${scale[@]}" --batch 32 --eot 4 --options bfloat16+channels_last+compile \
    --out "$out/scale_compile.json"
# issue 15: the reconstruction search on the GPU
step search 120 python3 benchmarks/bench_reconstruction_search.py --batch 32 --device cuda --steps 5 10 20 \
    --nb-noise 2 --repeats 3 --modes purify exact_ckpt exact_nockpt truncated --json "$out/bench_search.json"
echo "== done; $((deadline - SECONDS)) s of the budget left"
cat "$out/summary.txt"
