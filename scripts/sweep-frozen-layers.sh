#!/usr/bin/env bash
# How many bottom layers of SmolLM2 to freeze: validation accuracy per
# minute of training for a few choices, on the same 1,600 training items
# (100 optimiser steps). Validation only; test is not touched.
#   bash scripts/sweep-frozen-layers.sh [FROZEN...]     (default: 26 18 10)
# Prints one line per choice and writes results/finetune_frozen_sweep.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
ensure_data; ensure_models
cargo build --release --locked --quiet
out=results/finetune_frozen_sweep.csv
echo "frozen_layers,trainable_params,train_items,train_seconds,validation_accuracy" > "$out"
for frozen in "${@:-26 18 10}"; do
  for f in $frozen; do
    log=$(./target/release/slm-vs-llm finetune --max-train 1600 --frozen-layers "$f" --eval-every 0 \
          --validation-only --model-out "$SLM_CACHE/sweep/frozen-$f" 2>/dev/null)
    params=$(sed -n 's/.*(\([0-9]*\) of .*/\1/p' <<<"$log")
    seconds=$(sed -n 's/.*steps, \([0-9.]*\) s,.*/\1/p' <<<"$log")
    acc=$(sed -n 's/.*validation accuracy \([0-9.]*\)%.*/\1/p' <<<"$log" | tail -1)
    echo "$f,$params,1600,$seconds,$acc" | tee -a "$out"
    rm -rf "$SLM_CACHE/sweep/frozen-$f"
  done
done
