#!/usr/bin/env bash
# The main job: install what is missing, then execute every notebook on the
# full data (in place, so notebooks/ holds the executed versions) and export
# each to HTML in notebooks/html/.
source "$(dirname "$0")/common.sh"
setup_all
"$ROOT/scripts/run-notebooks.sh" --in-place "$@"
