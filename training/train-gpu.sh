#!/usr/bin/env bash
# Every stage of the default model's recipe in one command on one GPU (the device tool lends one
# for a single command of at most 10 minutes), each stage fitted into a time budget in seconds
# (--time-budget: the loop times its first steps and sets the step count). Batches are built ahead
# in worker processes (--workers) and the forward runs in bfloat16. Writes the run folder only;
# evaluate and export afterwards on any machine, as train-default.sh's last two commands do.
#   RUN=runs/gpu bash training/train-gpu.sh           (budgets and batch sizes: the variables below)
# PROGRAMS=0.3 makes that share of every stage's episodes (stage 0's in-context ones, stage 2's and the
# T5-MTF-Few-shot baseline's) random programs instead of training families; PROGRAM_LANGUAGE=tokens picks
# token_programs.py's extraction from realistic values over programs.py's rows of random fields.
set -euo pipefail
cd "$(dirname "$0")"
py=${PYTHON:-../.venv/bin/python}
run=${RUN:-runs/gpu}
mkdir -p "$run"
stamp() { echo "[$(date -u +%T)] $*"; }
common=(--run "$run" --bf16 --threads 1 --steps 1000000)  # --steps: a ceiling; the budgets decide
programs=(--programs "${PROGRAMS:-0}" --program-language "${PROGRAM_LANGUAGE:-fields}")

stamp "copy phase: copying random strings, the skill diluted mixtures were slow to find"
$py -m hypert5.train.pretrain "${common[@]}" --workers "${WORKERS:-12}" --phase copy --copy 1 --in-context 0 \
  --copy-source random --batch "${STAGE0_BATCH:-256}" --lr 1e-3 --time-budget "${COPY_S:-40}" 2>&1 | tee -a "$run/copy.log"
stamp "stage 0: in-context episodes (k = 1-8) + copying + span corruption, from the copy phase's weights"
cp "$run/downstream.safetensors" "$run/downstream_copy.safetensors"
$py -m hypert5.train.pretrain "${common[@]}" --workers "${WORKERS:-12}" --init "$run/downstream_copy.safetensors" \
  --in-context 0.6 --copy 0.2 --copy-source random --max-k 8 "${programs[@]}" --batch "${STAGE0_BATCH:-256}" --lr 1.5e-3 \
  --time-budget "${STAGE0_S:-220}" 2>&1 | tee -a "$run/stage0.log"
stamp "stages 1 and 2 for both kinds, and the T5-MTF-Few-shot baseline, side by side on the GPU"
pids=()
for kind in lora prefix; do
  ( $py -m hypert5.train.hyperpretrain "${common[@]}" --workers "${HYPER_WORKERS:-4}" --kind $kind \
      --batch "${STAGE1_BATCH:-64}" --lr 1e-3 --time-budget "${STAGE1_S:-20}" &&
    $py -m hypert5.train.finetune "${common[@]}" "${programs[@]}" --workers "${HYPER_WORKERS:-4}" --kind $kind \
      --episodes "${STAGE2_EPISODES:-64}" --lr 1e-3 --time-budget "${STAGE2_S:-170}"
  ) > "$run/$kind.log" 2>&1 &
  pids+=($!)
done
$py -m hypert5.train.mtf_fewshot "${common[@]}" "${programs[@]}" --workers "${HYPER_WORKERS:-4}" --batch "${MTF_BATCH:-128}" \
  --lr 1e-3 --time-budget "${MTF_S:-190}" > "$run/mtf.log" 2>&1 &
pids+=($!)
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
stamp "done (failed: $failed)"
exit $failed
