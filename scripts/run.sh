#!/usr/bin/env bash
# The main job: install what is missing, run every experiment with
# `slm-vs-llm all` (results/, the README's table, the charts in assets/),
# the learning curve and the cascades,
# then execute every notebook on the full data (in place, so notebooks/ holds
# the executed versions; they reuse the caches and checkpoints of the run
# before) and export each to HTML in notebooks/html/.
#   bash scripts/run.sh            SMOKE=1 bash scripts/run.sh (minutes)
source "$(dirname "$0")/common.sh"
setup_all
cd "$ROOT"
smoke=()
[ "${SMOKE:-0}" = "1" ] && smoke=(--smoke)
cli_release all "${smoke[@]}"
if [ ${#smoke[@]} -eq 0 ]; then
  # The headline SLM's further seeds (about 35 minutes each on 2 cores), beside
  # `all`'s first in results/; the curve takes them as seeds of its full-data point.
  for seed in 43 44; do
    cli_release finetune --seed "$seed" --out "results/seeds/$seed" --model-out "data/finetuned/smollm2-ag-news-seed$seed"
  done
fi
# The learning curve (5 to 6 hours on 2 cores from an empty cache, every point cached) and the
# two cascades, which the Comparison notebook and the README draw.
cli_release curve "${smoke[@]}"
cli_release cascade "${smoke[@]}" --first tfidf --then finetune
cli_release cascade "${smoke[@]}" --first finetune --then llm
if [ ${#smoke[@]} -eq 0 ]; then
  cli_release report
fi
"$ROOT/scripts/run-notebooks.sh" --in-place "$@"
