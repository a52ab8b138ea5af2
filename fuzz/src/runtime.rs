//! One tokio runtime for every input, created on first use. Work runs as a spawned task, so it
//! runs on a worker thread with tokio's default 2 MiB stack, as in the server (whose handlers
//! are tasks on its multi-threaded runtime), not on libFuzzer's larger main-thread stack.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Runtime;

/// The shared runtime: one worker thread (libFuzzer runs one input at a time).
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => panic!("cannot start the fuzzing runtime: {e}"),
        }
    })
}

/// Runs `future` as a task on the shared runtime and waits for it. A panic in the task (or in
/// anything it spawned) has already aborted the process through libFuzzer's panic hook; outside
/// libFuzzer it is re-raised here.
pub fn run<F>(future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let rt = runtime();
    match rt.block_on(rt.spawn(future)) {
        Ok(output) => output,
        Err(e) => match e.try_into_panic() {
            Ok(payload) => std::panic::resume_unwind(payload),
            Err(e) => panic!("fuzz task did not finish: {e}"),
        },
    }
}
