//! `PhaseContext`: the cycle's context, lent to Python for one call (a phase's `run`, or a
//! hook).
//!
//! The Rust [`CycleContext`] itself moves into the Python object for the call and moves back
//! afterwards, whatever the call did: nothing is copied, a Python phase reads and writes the
//! same artefact store as a Rust one, and a Rust phase that the Python one delegates to
//! ([`crate::phases`]'s `RustPhase.run`) runs on it too.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use miyabi_aws::{CycleContext, PhaseOutcome};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::artefacts::{Generation, Kind, PyArtefact, PyExecutionPlan, PyPlan};
use crate::world::PyWorldState;

/// What the Python side holds while a call runs.
struct Lent {
    /// `None` once the call ended, or while a delegated Rust phase runs on it.
    ctx: Option<CycleContext>,
    /// Counts the Python code set through the context.
    counted: PhaseOutcome,
}

/// The cycle's context during one Python phase's `run` (or a hook's call): the iteration,
/// the output folder, and the artefacts by class (`get`, `put`, `previous`, `first`, and
/// properties for the common ones). It is valid only during that call.
#[pyclass(name = "PhaseContext", module = "miyabi_aws._native", frozen)]
pub(crate) struct PyPhaseContext {
    lent: Arc<Mutex<Lent>>,
}

fn lock(lent: &Mutex<Lent>) -> MutexGuard<'_, Lent> {
    lent.lock().unwrap_or_else(PoisonError::into_inner)
}

fn ended() -> PyErr {
    PyRuntimeError::new_err("this PhaseContext is not usable: its call has returned (or a Rust phase is running on it)")
}

impl PyPhaseContext {
    fn with<R>(&self, f: impl FnOnce(&mut CycleContext) -> PyResult<R>) -> PyResult<R> {
        let mut lent = lock(&self.lent);
        let ctx = lent.ctx.as_mut().ok_or_else(ended)?;
        f(ctx)
    }

    /// Takes the context out for a Rust phase; [`PyPhaseContext::give_back`] returns it.
    pub(crate) fn take(&self) -> PyResult<CycleContext> {
        lock(&self.lent).ctx.take().ok_or_else(ended)
    }

    pub(crate) fn give_back(&self, ctx: CycleContext) {
        lock(&self.lent).ctx = Some(ctx);
    }

    fn artefact(&self, py: Python<'_>, cls: &Bound<'_, PyAny>, generation: Generation) -> PyResult<Option<Py<PyAny>>> {
        let kind = Kind::of_class(cls)?;
        self.with(|ctx| kind.get(py, &ctx.artefacts, generation))
    }

    fn current<C: PyArtefact>(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.artefact(py, py.get_type::<C>().as_any(), Generation::Current)
    }

    fn store<C: PyArtefact>(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let kind = Kind::of_class(py.get_type::<C>().as_any())?;
        self.with(|ctx| kind.put(&mut ctx.artefacts, value))
    }
}

#[pymethods]
impl PyPhaseContext {
    /// The iteration, 0-based.
    #[getter]
    fn iteration(&self) -> PyResult<u32> {
        self.with(|ctx| Ok(ctx.iteration()))
    }

    /// Where phases write their files, if anywhere.
    #[getter]
    fn out_dir(&self) -> PyResult<Option<PathBuf>> {
        self.with(|ctx| Ok(ctx.output.dir().map(std::path::Path::to_path_buf)))
    }

    /// Records a report file the phase wrote.
    fn add_report(&self, path: PathBuf) -> PyResult<()> {
        self.with(|ctx| {
            ctx.output.record(path);
            Ok(())
        })
    }

    /// This iteration's artefact of class `cls` (for example `miyabi_aws.Plan`), or `None`.
    fn get(&self, py: Python<'_>, cls: &Bound<'_, PyAny>) -> PyResult<Option<Py<PyAny>>> {
        self.artefact(py, cls, Generation::Current)
    }

    /// What the previous iteration ended with, of class `cls` (World n−1 for `WorldState`).
    fn previous(&self, py: Python<'_>, cls: &Bound<'_, PyAny>) -> PyResult<Option<Py<PyAny>>> {
        self.artefact(py, cls, Generation::Previous)
    }

    /// The first artefact of class `cls` in this cycle (World0 for `WorldState`).
    fn first(&self, py: Python<'_>, cls: &Bound<'_, PyAny>) -> PyResult<Option<Py<PyAny>>> {
        self.artefact(py, cls, Generation::First)
    }

    /// Stores `value` (an artefact object) as this iteration's artefact of its class, for the
    /// phases after this one.
    fn put(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let kind = Kind::of_value(value)?;
        self.with(|ctx| kind.put(&mut ctx.artefacts, value))
    }

    /// This iteration's world state, if a phase produced one.
    #[getter]
    fn get_world(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.current::<PyWorldState>(py)
    }

    /// Replaces this iteration's world state.
    #[setter]
    fn set_world(&self, py: Python<'_>, world: &Bound<'_, PyAny>) -> PyResult<()> {
        self.store::<PyWorldState>(py, world)
    }

    /// This iteration's plan (θ2), if a phase produced one.
    #[getter]
    fn get_plan(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.current::<PyPlan>(py)
    }

    /// Replaces this iteration's plan: a `Plan`, or a dict of its shape.
    #[setter]
    fn set_plan(&self, py: Python<'_>, plan: &Bound<'_, PyAny>) -> PyResult<()> {
        self.store::<PyPlan>(py, plan)
    }

    /// This iteration's execution plan (θ3), if a phase produced one.
    #[getter]
    fn get_execution_plan(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.current::<PyExecutionPlan>(py)
    }

    /// Replaces this iteration's execution plan: an `ExecutionPlan`, or a dict of its shape.
    #[setter]
    fn set_execution_plan(&self, py: Python<'_>, plan: &Bound<'_, PyAny>) -> PyResult<()> {
        self.store::<PyExecutionPlan>(py, plan)
    }

    /// Changes this phase found that may be applied, if it counts them; 0 lets the loop
    /// converge. A `PhaseOutcome` returned by `run` takes precedence.
    #[getter]
    fn get_applicable_changes(&self) -> Option<usize> {
        lock(&self.lent).counted.applicable
    }

    #[setter]
    fn set_applicable_changes(&self, n: usize) {
        lock(&self.lent).counted.applicable = Some(n);
    }

    /// Changes this phase applied and kept, if it applies any; 0 stops the loop.
    #[getter]
    fn get_applied_changes(&self) -> Option<usize> {
        lock(&self.lent).counted.applied
    }

    #[setter]
    fn set_applied_changes(&self, n: usize) {
        lock(&self.lent).counted.applied = Some(n);
    }
}

/// Lends `ctx` to Python for `call`, on a blocking thread that holds the interpreter only for
/// the call, and takes it back whatever the call did. Returns the call's result and the counts
/// it set on the context.
pub(crate) async fn lend<R: Send + 'static>(
    ctx: &mut CycleContext,
    call: impl FnOnce(Python<'_>, Py<PyPhaseContext>) -> PyResult<R> + Send + 'static,
) -> (PyResult<R>, PhaseOutcome) {
    let placeholder = CycleContext::new(Arc::clone(&ctx.aws));
    let lent = Arc::new(Mutex::new(Lent {
        ctx: Some(std::mem::replace(ctx, placeholder)),
        counted: PhaseOutcome::nothing(),
    }));
    let shared = Arc::clone(&lent);
    let joined = tokio::task::spawn_blocking(move || {
        Python::attach(|py| {
            let context = Py::new(py, PyPhaseContext { lent: shared })?;
            call(py, context)
        })
    })
    .await;
    let mut lent = lock(&lent);
    let returned = lent.ctx.take();
    let mut result =
        joined.unwrap_or_else(|join| Err(PyRuntimeError::new_err(format!("the Python call failed: {join}"))));
    match returned {
        Some(back) => *ctx = back,
        None if result.is_ok() => {
            result = Err(PyRuntimeError::new_err(
                "the cycle's context was not returned by the Python call",
            ));
        }
        None => {}
    }
    (result, lent.counted)
}

/// Runs `value` if it is a coroutine (an `async def run`), on an event loop of this thread,
/// and returns its result; returns anything else as it is.
pub(crate) fn awaited<'py>(py: Python<'py>, value: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let is_coroutine: bool = py
        .import("inspect")?
        .call_method1("iscoroutine", (&value,))?
        .extract()?;
    if is_coroutine {
        py.import("asyncio")?.call_method1("run", (value,))
    } else {
        Ok(value)
    }
}
