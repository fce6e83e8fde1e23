#!/usr/bin/env bash
# The docs/results.md rows of issue 21: the protocols for random defences on the shipped models, first N test images,
# l_inf eps 0.1. Per diffusion purifier two runs:
#   <defence>-eot:  PGD-EOT and the resubmission-aware attack at the same gradient budget (ITER iterations x EOT
#                   draws, surrogate gradient by default: GRADIENT), plus DW-box PGD with the same gradient;
#                   every figure by majority vote AND N-evaluation over VOTES purifications;
#   <defence>-dw:   DW-box PGD and APGD-CE (noise fixed and known to the attacker, no EOT) with EXACT gradients.
# and, beside them on the same images, the deterministic reconstruction search (ONLY=search search-sigma025): PGD and
# APGD-CE through its exact unrolled gradient (for a deterministic defence these ARE the DW-box attacks; no EOT, no
# votes), then Square (QUERIES queries), run as a cascade (each attack on the examples still robust).
#   bash benchmarks/results_protocols.sh OUTDIR                 # N=128 ITER=20 EOT=4 VOTES=5 DEVICE=auto
#   ONLY="search search-sigma025" bash benchmarks/results_protocols.sh OUTDIR
# The 2-core CPU ran N=32 ITER=10 (docs/results.md); a GPU runs N=128 in minutes. Runs resume when started again.
set -euo pipefail
out=${1:?usage: results_protocols.sh OUTDIR}
N=${N:-128}
ITER=${ITER:-20}
EOT=${EOT:-4}
VOTES=${VOTES:-5}
GRADIENT=${GRADIENT:-surrogate}
DEVICE=${DEVICE:-auto}
QUERIES=${QUERIES:-200}
ONLY=${ONLY:-uniform heterogeneous}
mkdir -p "$out"
common=(--n "$N" --eps 0.1 --max-iter "$ITER" --eot "$EOT" --votes "$VOTES" --no-sanity --no-figure --seed 0
        --device "$DEVICE" --batch-size "$N" --quiet)
run() {  # name, then the evaluate options
  local name=$1
  shift
  local resume=()
  [[ -f "$out/$name/partial/meta.json" ]] && resume=(--resume)
  echo "== $name: art-purify evaluate $* ${common[*]} --out $out/$name ${resume[*]}"
  art-purify evaluate "$@" "${common[@]}" --out "$out/$name" "${resume[@]}" | tee "$out/$name.txt"
}
search=(--defence reconstruction-search --gradient exact --attack pgd,apgd-ce,square --square-queries "$QUERIES"
        --cascade)
for defence in $ONLY; do
  case $defence in
    search) run search "${search[@]}" ;;
    search-sigma025) run search-sigma025 "${search[@]}" --sigma 0.25 ;;
    *) run "$defence-eot" --defence "$defence" --gradient "$GRADIENT" --attack pgd,resubmission,pgd-dw
       run "$defence-dw" --defence "$defence" --gradient exact --attack pgd-dw,apgd-dw ;;
  esac
done
