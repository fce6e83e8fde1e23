#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A queue of `art-purify evaluate --shard B/NBATCHES` runs, one batch at a time, for WORKERS processes that take the next
# unclaimed batch (longest first), so that two cores stay busy when the batches left are uneven (torchrun's ranks
# own fixed batches). Usage: bash campaign/queue.sh OUT NBATCHES "BATCHES" WORKERS -- EVALUATE-ARGS...
# (NBATCHES: the number of example batches of the run, e.g. 8 for --n 128 --batch-size 16).
# A last `art-purify evaluate ... --resume` (no --shard) then writes the report.
set -u
out=$1 nbatches=$2 batches=$3 workers=$4
shift 5
claims=$(mktemp -d /tmp/queue-claims.XXXX)
worker() {
  local id=$1
  shift
  for b in $batches; do
    mkdir "$claims/$b" 2>/dev/null || continue  # another worker has it
    echo "== worker $id: batch $b from $(date -u +%FT%TZ)"
    python -m art_purify evaluate "$@" --out "$out" --resume --shard "$b/$nbatches" || echo "== worker $id: batch $b FAILED"
  done
}
for w in $(seq 1 "$workers"); do worker "$w" "$@" & done
wait
echo "== queue done $(date -u +%FT%TZ)"
