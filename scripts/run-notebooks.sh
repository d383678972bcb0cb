#!/usr/bin/env bash
# Execute notebooks one after another with nbconvert and export them to HTML.
# Fails when any cell errors or panics.
#
#   scripts/run-notebooks.sh [--in-place] [--out DIR] [NOTEBOOK...]
#
# Default: every notebook in notebooks/ in the study's order, executed copies
# and HTML written to DIR (default notebooks/html). --in-place stores the
# executed notebook over the original (what the main run does). SMOKE=1 runs
# each on a small stratified sample.
source "$(dirname "$0")/common.sh"

in_place=0
out="$ROOT/notebooks/html"
notebooks=()
while [ $# -gt 0 ]; do
  case "$1" in
    --in-place) in_place=1 ;;
    --out) out="$2"; shift ;;
    *) notebooks+=("$1") ;;
  esac
  shift
done
if [ ${#notebooks[@]} -eq 0 ]; then
  for name in EDA K-NN FinetuneSLM LLM Comparison; do
    [ -f "$ROOT/notebooks/$name.ipynb" ] && notebooks+=("$ROOT/notebooks/$name.ipynb")
  done
fi
mkdir -p "$out"
prepare_evcxr
if [ ! -d "$EVCXR_TMPDIR/target" ]; then
  log "the first notebook compiles the dependencies for evcxr once (on 2 cores: about 10 minutes)"
fi
export SLM_NOTEBOOK_STRICT=1

status=0
for nb in "${notebooks[@]}"; do
  name="$(basename "$nb" .ipynb)"
  executed="$out/$name.ipynb"
  log "executing $name (SMOKE=${SMOKE:-0})"
  start=$(date +%s)
  if ! jupyter nbconvert --to notebook --execute \
      --ExecutePreprocessor.kernel_name=rust --ExecutePreprocessor.timeout=7200 \
      --output-dir "$out" --output "$name.ipynb" "$nb"; then
    echo "FAILED: $name: nbconvert reported an error" >&2
    status=1
    continue
  fi
  if ! cli check-notebook "$executed"; then
    echo "FAILED: $name: the executed notebook holds error output" >&2
    status=1
    continue
  fi
  if ! jupyter nbconvert --to html --template slm \
      --TemplateExporter.extra_template_basedirs="$ROOT/scripts/nbconvert" \
      --output-dir "$out" "$executed" 2>"$out/$name.export.log"; then
    cat "$out/$name.export.log" >&2
    echo "FAILED: $name: the HTML export failed" >&2
    status=1
    continue
  fi
  [ "$in_place" = 1 ] && cp "$executed" "$nb"
  echo "$name: ok in $(( $(date +%s) - start )) s -> $out/$name.html" >&2
done
exit $status
