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
    slm_vs_llm::cli::main()
}
