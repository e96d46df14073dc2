//! `run_cli`: the `miyabi-aws` command line inside the interpreter, for the wheel's console
//! script. It is the Rust CLI itself, so both installs behave alike.

use pyo3::prelude::*;

use crate::runtime::block_on;

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(run_cli, m)?)
}

/// Runs the command line with `argv` (the program name first) and returns its exit code.
#[pyfunction]
fn run_cli(py: Python<'_>, argv: Vec<String>) -> PyResult<u8> {
    block_on(py, async move { Ok(miyabi_aws::cli::run(argv).await) })
}
