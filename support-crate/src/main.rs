//! `slm-vs-llm`: the experiments of the notebooks from the command line
//! (the commands live in the library's `cli` module).

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    // Keep freed pages instead of returning them to the OS: candle frees and
    // reallocates large buffers every op, and re-faulting fresh pages cost
    // ~10% of inference. 15 is mi_option_purge_delay (mimalloc v2 and v3).
    // Binary-only on purpose: called from the library, mimalloc gets linked
    // into the notebooks' evcxr cell libraries, and their dlopen fails.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a process-wide allocator option; no memory is touched.
        unsafe { libmimalloc_sys::mi_option_set(15, -1) };
    }
    restore_default_sigpipe();
    slm_vs_llm::cli::main()
}

/// Rust ignores SIGPIPE, so `slm-vs-llm compare … | head` would panic on the
/// closed pipe at its next print; like other Unix tools, end quietly instead.
/// Results are written whole and cached, so a run ended this way loses nothing.
#[cfg(unix)]
fn restore_default_sigpipe() {
    extern "C" {
        fn signal(signum: i32, handler: usize) -> usize;
    }
    const SIGPIPE: i32 = 13;
    const SIG_DFL: usize = 0;
    // SAFETY: resets one signal's disposition to the default before any thread starts.
    unsafe { signal(SIGPIPE, SIG_DFL) };
}

#[cfg(not(unix))]
fn restore_default_sigpipe() {}
