#!/usr/bin/env bash
# The docs/results.md comparison of issue 15: the reconstruction search (chosen defaults, and rho = 0) next to the
# uniform and heterogeneous diffusion purifiers, on the same first N test images, l_inf eps 0.1, APGD-CE and APGD-DLR
# with exact gradients (ITER iterations), BPDA (reference), Square and, for the search, the defence-aware attack;
# --cascade (AutoAttack's way: each attack on the examples still robust) so the worst case costs less.
#   bash benchmarks/results_reconstruction_search.sh OUTDIR            # N=128 ITER=50 DEVICE=auto by default
# Hours on the 2-core CPU, minutes on a GPU. Every run resumes where it stopped when the script is started again,
# at the granularity of one attack on one batch of BATCH images: on the CPU use BATCH=16 (a batch-attack then takes
# minutes, not hours; other batch sizes draw other, equally valid random starts and noise), and ONLY=... to run
# the four runs two at a time.
set -euo pipefail
out=${1:?usage: results_reconstruction_search.sh OUTDIR}
N=${N:-128}
ITER=${ITER:-50}
DEVICE=${DEVICE:-auto}
QUERIES=${QUERIES:-1000}
BATCH=${BATCH:-128}
ONLY=${ONLY:-search search-rho0 uniform heterogeneous}
mkdir -p "$out"
common=(--n "$N" --eps 0.1 --max-iter "$ITER" --square-queries "$QUERIES" --cascade --sanity-n 8 --seed 0
        --device "$DEVICE" --batch-size "$BATCH" --quiet)
run() {  # name, then the evaluate options
  local name=$1
  shift
  local resume=()
  [[ -f "$out/$name/partial/meta.json" ]] && resume=(--resume)
  echo "== $name: art-purify evaluate $* ${common[*]} --out $out/$name ${resume[*]}"
  art-purify evaluate "$@" "${common[@]}" --out "$out/$name" "${resume[@]}" | tee "$out/$name.txt"
}
for name in $ONLY; do
  case $name in
    search) run search --defence reconstruction-search --attack apgd-ce,apgd-dlr,reconstruction-aware,bpda,square ;;
    search-rho0) run search-rho0 --defence reconstruction-search --rho 0 \
                   --attack apgd-ce,apgd-dlr,reconstruction-aware,bpda,square ;;
    uniform) run uniform --defence uniform --gradient exact --eot 4 --votes 5 --attack apgd-ce,apgd-dlr,bpda,square ;;
    heterogeneous) run heterogeneous --defence heterogeneous --gradient exact --eot 4 --votes 5 \
                     --attack apgd-ce,apgd-dlr,bpda,square ;;
    *) echo "unknown run $name" >&2; exit 2 ;;
  esac
done
