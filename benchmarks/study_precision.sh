#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
#
# Issue 18: do attack outcomes stay the same, beyond vote noise, when the UNet calls run in bfloat16?
# PGD-EOT against the heterogeneous defence (surrogate gradient) on the shipped Fashion-MNIST models, the same first
# N test images, in float32 and in bfloat16 with the same seed (the same noise draws: only the UNet's rounding
# differs), and again with a second seed. The float32 runs of the two seeds differ by vote noise alone; bfloat16's
# runs are compared with float32's of the same seed, example by example (exact McNemar and the clean predictions,
# campaign_progress.py --compare).
#   bash benchmarks/study_precision.sh OUTDIR                    # N=128 ITER=10 EOT=4 VOTES=5, all four rows
#   ONLY="float32-s0 float32-s1" bash benchmarks/study_precision.sh OUTDIR &     # one process per core: half the
#   ONLY="bfloat16-s0 bfloat16-s1" bash benchmarks/study_precision.sh OUTDIR     # rows each, at the same time
# About 23 minutes per float32 row on one CPU core (OMP_NUM_THREADS=1). A finished row (report.json) is skipped, an
# unfinished one resumes.
set -euo pipefail
out=${1:?usage: study_precision.sh OUTDIR}
N=${N:-128}
ITER=${ITER:-10}
EOT=${EOT:-4}
VOTES=${VOTES:-5}
DEVICE=${DEVICE:-cpu}
ONLY=${ONLY:-float32-s0 bfloat16-s0 float32-s1 bfloat16-s1}
mkdir -p "$out"
common=(--defence heterogeneous --gradient surrogate --attack pgd --eot "$EOT" --votes "$VOTES" --n "$N" --eps 0.1
        --max-iter "$ITER" --no-sanity --no-figure --device "$DEVICE" --batch-size 16 --quiet)
for name in $ONLY; do
  precision=${name%-s*}
  seed=${name##*-s}
  if [[ -f "$out/$name/report.json" ]]; then
    echo "== $name: finished ($out/$name/report.json)"
    continue
  fi
  resume=()
  [[ -f "$out/$name/partial/meta.json" ]] && resume=(--resume)
  echo "== $name: art-purify evaluate ${common[*]} --precision $precision --seed $seed --out $out/$name ${resume[*]}"
  python -m art_purify evaluate "${common[@]}" --precision "$precision" --seed "$seed" --out "$out/$name" \
    "${resume[@]}" | tee "$out/$name.txt"
done
here=$(dirname "$0")
for pair in "float32-s0 float32-s1" "bfloat16-s0 bfloat16-s1" "float32-s0 bfloat16-s0" "float32-s1 bfloat16-s1"; do
  read -r a b <<<"$pair"
  if [[ -f "$out/$a/report.json" && -f "$out/$b/report.json" ]]; then
    python "$here/campaign_progress.py" --compare "$out/$a" "$out/$b" | tee "$out/compare-$a-$b.txt"
  fi
done
