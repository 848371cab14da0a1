#!/usr/bin/env bash
# Trains the default model end to end on CPU, stage by stage, then evaluates and exports it to
# models/default. Every stage resumes from its checkpoint, so re-running after an interruption
# continues where it stopped. Step counts are the ones the shipped model used; override by env.
#   bash training/train-default.sh            (logs: runs/default/*.log)
set -euo pipefail
cd "$(dirname "$0")"
py=../.venv/bin/python
run=${RUN:-runs/default}
mkdir -p "$run"
$py -m hypert5.train.pretrain --run "$run" --steps "${STAGE0_STEPS:-2000}" --lr 1.5e-3 2>&1 | tee -a "$run/stage0.log"
# The two kinds are independent from here on: one core each.
for kind in lora prefix; do
  ( $py -m hypert5.train.hyperpretrain --run "$run" --kind $kind --steps "${STAGE1_STEPS:-100}" --threads 1 &&
    $py -m hypert5.train.finetune --run "$run" --kind $kind --steps "${STAGE2_STEPS:-1200}" --threads 1
  ) > "$run/$kind.log" 2>&1 &
done
wait
# Baseline (b), T5-MTF-Few-shot: a copy of the downstream fine-tuned with demonstrations in the prompt.
$py -m hypert5.train.mtf_fewshot --run "$run" --steps "${MTF_STEPS:-1000}" 2>&1 | tee -a "$run/mtf.log"
$py -m hypert5.train.evaluate --run "$run" 2>&1 | tee "$run/eval.log"
$py -m hypert5.export --checkpoint "$run" --out ../models/default
