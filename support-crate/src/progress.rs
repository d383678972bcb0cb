//! Progress bars (indicatif) for anything that takes more than a few seconds.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar over `len` items labelled `what`; hidden when `visible` is false
/// (indicatif also hides it when stderr is not a terminal).
pub fn bar(len: u64, what: &str, visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} ({per_sec}, ETA {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}
