//! The one way into blocking Rust from Python: own the inputs, release the interpreter, run on
//! the shared tokio runtime (the one `pyo3-async-runtimes` also uses for coroutines), and honour
//! Ctrl-C.

use std::future::Future;
use std::time::Duration;

use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use pyo3::prelude::*;

use crate::errors::panicked;

/// How often a blocking call looks for a pending signal (Ctrl-C).
const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// Runs `fut` to completion with the interpreter released. A pending signal (for example
/// `KeyboardInterrupt`) cancels the future and is raised; a panic becomes a `MiyabiError`.
pub(crate) fn block_on<F, T>(py: Python<'_>, fut: F) -> PyResult<T>
where
    F: Future<Output = PyResult<T>> + Send,
    T: Send,
{
    let runtime = pyo3_async_runtimes::tokio::get_runtime();
    py.detach(|| {
        runtime.block_on(async {
            let mut fut = std::pin::pin!(AssertUnwindSafe(fut).catch_unwind());
            loop {
                tokio::select! {
                    out = &mut fut => return out.unwrap_or_else(|panic| Err(panicked(&*panic))),
                    () = tokio::time::sleep(SIGNAL_POLL) => {
                        #[allow(clippy::redundant_closure_for_method_calls)] // the method is not general over the lifetime
                        Python::attach(|py| py.check_signals())?;
                    }
                }
            }
        })
    })
}

/// Runs `f` with the interpreter released; a panic becomes a `MiyabiError`.
pub(crate) fn detach<T: Send>(py: Python<'_>, f: impl FnOnce() -> T + Send) -> PyResult<T> {
    py.detach(|| std::panic::catch_unwind(AssertUnwindSafe(f)))
        .map_err(|panic| panicked(&*panic))
}
