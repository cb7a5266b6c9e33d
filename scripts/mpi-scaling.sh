#!/usr/bin/env bash
# 1 process × 2 threads (--batch-size 4) against 2 MPI ranks × 1 thread (--batch-size 2 each): the same global
# batch of 4 × 256 tokens, LoRA r = 8 on SmolLM2-135M. Prints, per layout and repetition, the mean step time of
# steps 2…N, the communication time per step (and the allreduce alone: its shortest time over the ranks) and the
# loss curve (which must be the same in both layouts). Measure more than once on a shared machine.
#   scripts/mpi-scaling.sh            (env: PRUNE_SMOLLM2, DATA, STEPS=5, REPS="1 2 3")
set -euo pipefail
cd "$(dirname "$0")/.."
M=${PRUNE_SMOLLM2:-$HOME/.cache/prune-dev/smollm2-135m}; D=${DATA:-Recipes/data/kjv-valid.jsonl}
F=.build/release/finetune; OUT=$(mktemp -d)
ROOT=""; [ "$(id -u)" = 0 ] && ROOT="--allow-run-as-root"
A="$M --lora --rank 8 --dataset $D --context 256 --steps ${STEPS:-5} --lr 2e-4 --eval-tokens 256 --no-shuffle"
for rep in ${REPS:-1 2 3}; do
  $F $A --batch-size 4 --threads 2 -o $OUT/one-$rep > /dev/null 2> $OUT/one-$rep.log
  mpirun $ROOT --bind-to none -np 2 $F $A --batch-size 2 --threads 1 -o $OUT/two-$rep > /dev/null 2> $OUT/two-$rep.log
  for k in one two; do
    python3 - $OUT/$k-$rep/metrics.jsonl "$k rep $rep" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"loss"' in l]
el = [r['elapsed'] for r in rows]; steps = [b - a for a, b in zip(el, el[1:])]   # no evaluation between steps
comm = [r.get('communication_seconds', 0) for r in rows[1:]]; xfer = [r.get('allreduce_seconds', 0) for r in rows[1:]]
print(f"{sys.argv[2]}: {sum(steps)/len(steps):.3f} s/step (min {min(steps):.3f}), communication {sum(comm)/len(comm):.4f} s/step "
      f"(allreduce alone {sum(xfer)/len(xfer):.4f}); losses {[round(r['loss'], 5) for r in rows]}")
PY
  done
done
grep -h "trainable:" $OUT/one-1.log || true
uptime
rm -rf "$OUT"
