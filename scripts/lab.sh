#!/usr/bin/env bash
# Open the notebooks in JupyterLab with the Rust kernel and the project's
# build settings (optimised dependencies, the shared evcxr build directory).
#
#   bash scripts/lab.sh [JUPYTERLAB ARGS...]      e.g. --port 8890 --no-browser
#   SMOKE=1 bash scripts/lab.sh                   every notebook on a small sample
#
# Installs what is missing first (Rust kernel, Jupyter, data, models), like
# scripts/run.sh. The first cell of the first notebook you run builds the
# support crate for evcxr: about 15 minutes on 2 cores once, seconds after.
source "$(dirname "$0")/common.sh"
setup_all
log "starting JupyterLab in $ROOT/notebooks (SMOKE=${SMOKE:-0}); stop it with Ctrl-C"
cd "$ROOT/notebooks"
root_flag=()
[ "$(id -u)" = 0 ] && root_flag=(--allow-root)   # containers and CI machines run as root
exec jupyter lab --notebook-dir "$ROOT/notebooks" "${root_flag[@]}" "$@"
