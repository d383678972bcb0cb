#!/usr/bin/env bash
# Benchmarks against the Python reference stack on this machine, in one run.
# The Python side (PyTorch, sentence-transformers) is installed here only,
# into $SLM_CACHE/venv-bench; it is never a project dependency.
#
#   bash scripts/bench.sh [--setup-only]
source "$(dirname "$0")/common.sh"
ensure_data
ensure_models
BENCH_VENV="$SLM_CACHE/venv-bench"
stamp="$BENCH_VENV/.requirements.sha256"
want="$(sha256sum "$ROOT/benches/python/requirements.txt" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing the Python reference stack into $BENCH_VENV (PyTorch: a large download)"
  python3 -m venv "$BENCH_VENV"
  "$BENCH_VENV/bin/pip" install --quiet -r "$ROOT/benches/python/requirements.txt"
  echo "$want" > "$stamp"
fi
[ "${1:-}" = "--setup-only" ] && exit 0

cd "$ROOT"
cargo build --release --quiet
log "embedding throughput: candle vs sentence-transformers"
"$TARGET_DIR/release/slm-vs-llm" bench embed --python "$BENCH_VENV/bin/python"
log "K-NN search against its matrix product"
"$TARGET_DIR/release/slm-vs-llm" bench knn
log "SLM fine-tuning and inference: candle vs PyTorch + transformers"
"$TARGET_DIR/release/slm-vs-llm" bench slm --python "$BENCH_VENV/bin/python"
log "TF-IDF + logistic regression: Rust vs scikit-learn"
"$TARGET_DIR/release/slm-vs-llm" bench baseline --python "$BENCH_VENV/bin/python"
log "LLM classification: the embedded constrained decoder vs llama.cpp's server on the same GGUF"
bash "$ROOT/scripts/with-llama-server.sh" "$TARGET_DIR/release/slm-vs-llm" bench llm --model SmolLM2-135M-Instruct
