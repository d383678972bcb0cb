# Shared settings and install steps of the project scripts (sourced, not run).
# Every step is idempotent and quick when its result is already there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Build caches and the Jupyter virtual environment live outside the clone, so
# a fresh clone (as in CI) reuses them.
SLM_CACHE="${SLM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/slm-vs-llm}"
VENV="$SLM_CACHE/venv-jupyter"
EVCXR_VERSION="0.22.0"
export PATH="$HOME/.cargo/bin:$VENV/bin:$PATH"
if [ "${CI:-}" = "true" ] && [ -z "${CARGO_TARGET_DIR:-}" ]; then
  export CARGO_TARGET_DIR="$SLM_CACHE/target"
fi
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

# Each step with the time it started, so a slow step is visible.
log() { printf '\n==> [%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

ensure_rust() {
  command -v cargo >/dev/null || { echo "cargo not found: install Rust from https://rustup.rs" >&2; exit 1; }
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
}

ensure_evcxr() {
  if ! cargo install --list | grep -q "^evcxr_jupyter v$EVCXR_VERSION:"; then
    # opt-level 1: the kernel only parses cells and drives cargo, and this
    # compiles in about half the time of the default 3.
    log "installing evcxr_jupyter $EVCXR_VERSION (minutes on 2 cores, once)"
    CARGO_PROFILE_RELEASE_OPT_LEVEL=1 cargo install --locked evcxr_jupyter --version "$EVCXR_VERSION"
  fi
}

ensure_venv() {
  local stamp="$VENV/.requirements.sha256" want
  want="$(sha256sum "$ROOT/requirements-jupyter.txt" | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "creating the Jupyter virtual environment in $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip
    "$VENV/bin/pip" install --quiet -r "$ROOT/requirements-jupyter.txt"
    echo "$want" > "$stamp"
  fi
  if ! "$VENV/bin/jupyter" kernelspec list 2>/dev/null | grep -qw rust; then
    log "registering the evcxr Rust kernel with Jupyter"
    evcxr_jupyter --install
  fi
}

# The evcxr build directory: shared by all notebooks (run them one at a time),
# with the per-package optimisation levels of notebooks/evcxr/cargo-config.toml.
# evcxr writes its own .cargo/config.toml into the build directory, so ours
# sits one level up, where cargo still finds it.
prepare_evcxr() {
  local home="$SLM_CACHE/evcxr"
  mkdir -p "$home/.cargo" "$home/build"
  cp "$ROOT/notebooks/evcxr/cargo-config.toml" "$home/.cargo/config.toml"
  export EVCXR_TMPDIR="$home/build"
  # Build the notebooks against the same dependency versions as the tests.
  cp "$ROOT/Cargo.lock" "$EVCXR_TMPDIR/Cargo.lock"
  # evcxr links cell code against a dynamic libstd through a relative rpath
  # that is off by one directory when the build directory and the toolchain
  # share a parent (as ~/.cache and ~/.rustup do): "dlopen failed". Name the
  # toolchain's library directory explicitly.
  local host
  host="$(rustc -vV | sed -n 's/^host: //p')"
  export LD_LIBRARY_PATH="$(rustc --print sysroot)/lib/rustlib/$host/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
}

ensure_data() {
  local shared="$ROOT/../shared/data/ag_news" dest="$ROOT/data/ag_news"
  if [ ! -f "$dest/test.csv" ] && [ -z "${AG_NEWS_DIR:-}" ] && [ -f "$shared/test.csv" ]; then
    log "copying AG News from $shared to $dest"
    mkdir -p "$dest"
    cp "$shared"/*.csv "$dest/"
  fi
}

ensure_models() {
  local fetch="$ROOT/../shared/models/fetch-models"
  if [ -x "$fetch" ]; then
    "$fetch" "$ROOT/data/models" >/dev/null
  fi
}

# Headless Chromium for the browser test of the exported notebooks (Debian's package).
ensure_chromium() {
  if ! command -v chromium >/dev/null; then
    log "installing Chromium (Debian's package) for the browser test"
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
      sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    fi
  fi
}

setup_all() {
  ensure_rust
  ensure_evcxr
  ensure_venv
  ensure_data
  ensure_models
  prepare_evcxr
}

# The CLI in the dev profile: the numeric crates are optimised there too, and
# it shares its build with `cargo test`.
cli() {
  cargo build --quiet --manifest-path "$ROOT/Cargo.toml" --bin slm-vs-llm
  "$TARGET_DIR/debug/slm-vs-llm" "$@"
}

# The optimised binary, for the experiments themselves.
cli_release() {
  cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" --bin slm-vs-llm
  "$TARGET_DIR/release/slm-vs-llm" "$@"
}
