#!/usr/bin/env bash
# Integration test of the LLM client against a real OpenAI-compatible server:
# llama.cpp's server serving the SmolLM2 GGUF on loopback (see
# with-llama-server.sh), tests/llama_server.rs run against it.
#   bash scripts/test-llama-server.sh
exec bash "$(dirname "$0")/with-llama-server.sh" \
  bash -c 'SLM_LLAMA_SERVER_URL="$OPENAI_BASE_URL" SLM_REQUIRE_LLAMA_SERVER=1 cargo test --locked --test llama_server -- --nocapture'
