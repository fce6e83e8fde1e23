#!/usr/bin/env bash
# The docs/results.md comparison of issue 16 (AToP): no defence, the random transform alone, the transform with the
# pre-trained-only purifier and with the fine-tuned one (AToP), on the same first N test images, l_inf eps 0.1.
# Attacks: PGD-EOT and APGD-CE/DLR with exact gradients through generator and transform (EOT over the draws),
# PGD l_2 (an attack AToP was not trained with), Square (black-box), and the references BPDA and the transfer FGSM
# that AToP trains with; --cascade (each attack on the examples still robust) so the worst case costs less.
#   bash benchmarks/results_atop.sh OUTDIR                 # N=256 ITER=50 EOT=4 VOTES=5 TRANSFORM=rt2 by default
#   CASCADE=0 ATTACKS=pgd,pgd-l2,apgd-dlr,transfer-fgsm bash benchmarks/results_atop.sh OUTDIR-each
#                                        # each attack on every image: the per-attack (generalisation) figures
# About half an hour per defended row on one CPU core. Every run resumes where it stopped when started again.
set -euo pipefail
out=${1:?usage: results_atop.sh OUTDIR}
N=${N:-256}
ITER=${ITER:-50}
EOT=${EOT:-4}
VOTES=${VOTES:-5}
QUERIES=${QUERIES:-1000}
TRANSFORM=${TRANSFORM:-rt2}
SEED=${SEED:-0}
DEVICE=${DEVICE:-auto}
ONLY=${ONLY:-none random-masking atop-pretrained atop}
ATTACKS=${ATTACKS:-pgd,apgd-ce,apgd-dlr,pgd-l2,bpda,transfer-fgsm,square}
CASCADE=${CASCADE:-1}
mkdir -p "$out"
common=(--n "$N" --eps 0.1 --max-iter "$ITER" --square-queries "$QUERIES" --sanity-n 8 --seed "$SEED"
        --device "$DEVICE" --batch-size 128 --quiet --attack "$ATTACKS")
[[ $CASCADE == 1 ]] && common+=(--cascade)
for name in $ONLY; do
  resume=()
  [[ -f "$out/$name/partial/meta.json" ]] && resume=(--resume)
  extra=()
  [[ $name != none ]] && extra=(--eot "$EOT" --votes "$VOTES")
  [[ $name != none ]] && extra+=(--transform "$TRANSFORM")
  echo "== $name: art-purify evaluate --defence $name ${extra[*]} ${common[*]} --out $out/$name ${resume[*]}"
  art-purify evaluate --defence "$name" "${extra[@]}" "${common[@]}" --out "$out/$name" "${resume[@]}" \
    | tee "$out/$name.txt"
done
