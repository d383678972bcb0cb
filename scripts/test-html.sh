#!/usr/bin/env bash
# The exported notebook pages in a real browser: headless Chromium loads each
# HTML page in DIR, its DOM is checked against the executed notebook beside it
# (every chart shown as an image with alt text, no error output), and a
# screenshot is saved next to it (a build output, not committed).
#
#   bash scripts/test-html.sh DIR        (DIR as written by run-notebooks.sh --out DIR)
source "$(dirname "$0")/common.sh"
dir="${1:?usage: test-html.sh DIR (the --out directory of run-notebooks.sh)}"
ensure_chromium
status=0
shopt -s nullglob
pages=("$dir"/*.html)
[ ${#pages[@]} -gt 0 ] || { echo "no HTML pages in $dir" >&2; exit 1; }
for page in "${pages[@]}"; do
  name="$(basename "$page" .html)"
  browser=(chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --allow-file-access-from-files)
  if ! "${browser[@]}" --virtual-time-budget=10000 --dump-dom "file://$page" >"$dir/$name.dom.html" 2>"$dir/$name.browser.log"; then
    cat "$dir/$name.browser.log" >&2
    echo "FAILED: $name: Chromium could not load the page" >&2
    status=1
    continue
  fi
  "${browser[@]}" --window-size=1280,2400 --screenshot="$dir/$name.png" "file://$page" >/dev/null 2>&1 || true
  cli check-page "$dir/$name.dom.html" "$dir/$name.ipynb" || status=1
done
exit $status
