//! Which panics are findings. libFuzzer's panic hook aborts at the panic itself, before any
//! `catch_unwind` up the stack can act; but Strata's readers deliberately catch panics inside
//! the parquet crate (which has some on damaged files) and report the file as corrupt. So a
//! panic inside the parquet crate only prints here and unwinds: if Strata catches it, it is
//! handled; if not, it reaches libfuzzer-sys's own `catch_unwind`, which aborts, and is a
//! finding after all. Every other panic aborts at once, as before.

use std::sync::Once;

/// Installs the hook (once; every target calls it first).
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_parquet = info
                .location()
                .is_some_and(|l| l.file().contains("/parquet-"));
            if in_parquet {
                eprintln!(
                    "strata-fuzz: panic inside the parquet crate, left to the reader: {info}"
                );
            } else {
                abort(info);
            }
        }));
    });
}
