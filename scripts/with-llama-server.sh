#!/usr/bin/env bash
# Runs a command with llama.cpp's OpenAI-compatible server (llama-cpp-python)
# serving the SmolLM2-135M-Instruct GGUF on loopback, OPENAI_BASE_URL pointing
# at it, and stops the server afterwards. Installs llama-cpp-python[server]
# once into $SLM_CACHE/venv-llamacpp (it compiles llama.cpp: about 5 minutes
# on 2 cores). The model is served as "SmolLM2-135M-Instruct".
#   bash scripts/with-llama-server.sh cargo run --release -- llm --model SmolLM2-135M-Instruct
source "$(dirname "$0")/common.sh"
ensure_models
LLAMA_VENV="$SLM_CACHE/venv-llamacpp"
LLAMA_CPP_PYTHON="llama-cpp-python[server]==0.3.16"
if ! "$LLAMA_VENV/bin/python" -c 'import llama_cpp.server' 2>/dev/null; then
  log "installing $LLAMA_CPP_PYTHON into $LLAMA_VENV (compiles llama.cpp, about 5 minutes)"
  python3 -m venv "$LLAMA_VENV"
  "$LLAMA_VENV/bin/pip" install --quiet "$LLAMA_CPP_PYTHON"
fi
gguf="$ROOT/data/models/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
port="$("$LLAMA_VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
server_log="$(mktemp)"
"$LLAMA_VENV/bin/python" -m llama_cpp.server --model "$gguf" --model_alias SmolLM2-135M-Instruct \
  --host 127.0.0.1 --port "$port" --n_ctx 4096 --n_threads 2 > "$server_log" 2>&1 &
server=$!
stop_server() {
  local status=$?
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true   # 143: it was killed, as intended
  rm -f "$server_log"
  exit "$status"   # the command's status, not the killed server's
}
trap stop_server EXIT
for _ in $(seq 120); do
  curl -sf "http://127.0.0.1:$port/v1/models" > /dev/null && break
  kill -0 "$server" 2>/dev/null || { cat "$server_log"; echo "llama.cpp server died" >&2; exit 1; }
  sleep 1
done
curl -sf "http://127.0.0.1:$port/v1/models" > /dev/null || { cat "$server_log"; echo "llama.cpp server did not start" >&2; exit 1; }
log "llama.cpp server on 127.0.0.1:$port"
cd "$ROOT"
OPENAI_BASE_URL="http://127.0.0.1:$port/v1" "$@"
