#!/usr/bin/env bash
# More HyperT5-LoRA stage 2 with family chains on one GPU, continuing an existing run: one copy of the
# run per chain share, trained side by side (the model is small enough that two jobs share the GPU
# at little cost each), each fitted into a time budget. Writes <base>-chains<share>/ and its log;
# the everyday gate and the evaluations run afterwards on any machine (models/default/README.md).
#   BASE=runs/wise bash training/train-gpu-chains.sh     (shares, budget, batch: the variables below)
set -euo pipefail
cd "$(dirname "$0")"
py=${PYTHON:-../.venv/bin/python}
base=${BASE:?BASE: the run folder to continue}
pids=()
for share in ${SHARES:-0.4 0.25}; do
  run="$base-chains$share"
  if [ -e "$run" ]; then echo "$run exists: move it away first (a trained run is never overwritten)" >&2; exit 1; fi
  cp -r "$base" "$run"
  $py -m hypert5.train.finetune --run "$run" --kind lora --phase "${PHASE:-stage2i}" --bf16 --threads 1 \
    --workers "${WORKERS:-7}" --episodes "${EPISODES:-64}" --lr "${LR:-3e-4}" --programs "$share" \
    --program-language chains --steps 1000000 --time-budget "${BUDGET_S:-430}" > "$run.log" 2>&1 &
  pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
exit $failed
