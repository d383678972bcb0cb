#!/usr/bin/env bash
# The notebook runner must fail when a cell panics or a cell's error goes
# unnoticed by nbconvert, and pass a clean notebook.
source "$(dirname "$0")/common.sh"
fixtures="$ROOT/scripts/fixtures"
out="$(mktemp -d)"
for nb in "$fixtures"/fails-*.ipynb; do
  if "$ROOT/scripts/run-notebooks.sh" --out "$out" "$nb" >"$out/log" 2>&1; then
    cat "$out/log" >&2
    echo "FAIL: $(basename "$nb") passed the notebook runner" >&2
    exit 1
  fi
  echo "ok: $(basename "$nb") was rejected"
done
"$ROOT/scripts/run-notebooks.sh" --out "$out" "$fixtures/passes.ipynb"
echo "ok: passes.ipynb was accepted"
