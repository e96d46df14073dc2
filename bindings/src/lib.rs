//! `miyabi_aws._native`: the Python face of miyabi-aws, built by maturin.
//!
//! Nothing but conversion and exception mapping lives here. Every blocking call takes its
//! inputs, releases the interpreter and runs on the shared tokio runtime ([`runtime`]); every
//! async variant is a coroutine on that same runtime.

mod artefacts;
mod cli;
mod context;
mod cycle;
mod errors;
mod fleet;
mod phases;
mod runtime;
mod world;

use pyo3::prelude::*;

/// The native module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("SCHEMA_VERSION", miyabi_aws::world::SCHEMA_VERSION)?;
    errors::register(m)?;
    world::register(m)?;
    artefacts::register(m)?;
    phases::register(m)?;
    cycle::register(m)?;
    cli::register(m)?;
    fleet::register(m)?;
    Ok(())
}
