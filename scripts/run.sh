#!/usr/bin/env bash
# The main job: install what is missing, run every experiment with
# `slm-vs-llm all` (results/, the README's table, the charts in assets/),
# then execute every notebook on the full data (in place, so notebooks/ holds
# the executed versions; they reuse the caches and checkpoints of the run
# before) and export each to HTML in notebooks/html/.
#   bash scripts/run.sh            SMOKE=1 bash scripts/run.sh (minutes)
source "$(dirname "$0")/common.sh"
setup_all
cd "$ROOT"
if [ "${SMOKE:-0}" = "1" ]; then
  cli_release all --smoke
else
  cli_release all
fi
"$ROOT/scripts/run-notebooks.sh" --in-place "$@"
