//! `Cycle`: the Rust loop, holding Rust phases and phases written in Python side by side.
//!
//! A Python phase is any object with a `name` and a `run(context)` method, plus `theta` (1–6)
//! unless its name is a phase's name (`discovery`, `planning`, …). It runs on a blocking
//! thread that takes the interpreter only for the call; its exception travels through the Rust
//! cycle untouched and is raised again, type and message intact.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use miyabi_aws::cycle::{IterationRecord, StopReason};
use miyabi_aws::plan::execution::ExecutionPlan;
use miyabi_aws::plan::Plan;
use miyabi_aws::{Cycle, CycleContext, Error, ForeignPayload, Phase, PhaseId, PhaseOutcome, WorldState};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::PyMiyabiError;
use crate::phases::PyRustPhase;
use crate::runtime::block_on;
use crate::world::{load_catalog, PyWorldState};

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyCycle>()?;
    m.add_class::<PyPhaseContext>()?;
    m.add_class::<PyCycleReport>()?;
    Ok(())
}

/// What a Python phase sees and changes of the cycle's state.
#[derive(Default)]
struct ContextState {
    iteration: u32,
    world: Option<PyWorldState>,
    out_dir: Option<PathBuf>,
    reports: Vec<PathBuf>,
    applicable_changes: Option<usize>,
    plan: Option<Plan>,
    execution_plan: Option<ExecutionPlan>,
}

/// The cycle's state, lent to a Python phase for the length of its `run`.
#[pyclass(name = "PhaseContext", module = "miyabi_aws._native", frozen)]
pub(crate) struct PyPhaseContext {
    state: Mutex<ContextState>,
}

impl PyPhaseContext {
    fn state(&self) -> std::sync::MutexGuard<'_, ContextState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[pymethods]
impl PyPhaseContext {
    /// The iteration, 0-based.
    #[getter]
    fn iteration(&self) -> u32 {
        self.state().iteration
    }

    /// The latest world state, if an earlier phase produced one.
    #[getter]
    fn get_world(&self) -> Option<PyWorldState> {
        self.state().world.clone()
    }

    /// Replaces the world state.
    #[setter]
    fn set_world(&self, world: PyWorldState) {
        self.state().world = Some(world);
    }

    /// Where phases write their files, if anywhere.
    #[getter]
    fn out_dir(&self) -> Option<PathBuf> {
        self.state().out_dir.clone()
    }

    /// Changes this phase found that may be applied, if it counts them; 0 lets the loop
    /// converge.
    #[getter]
    fn get_applicable_changes(&self) -> Option<usize> {
        self.state().applicable_changes
    }

    /// Sets the number of applicable changes.
    #[setter]
    fn set_applicable_changes(&self, n: usize) {
        self.state().applicable_changes = Some(n);
    }

    /// θ2's plan of this iteration, as a dict, if a planning phase ran.
    #[getter]
    fn plan<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.state()
            .plan
            .as_ref()
            .map(|p| Ok(pythonize::pythonize(py, p)?))
            .transpose()
    }

    /// θ3's execution plan of this iteration, as a dict, if an optimization phase ran.
    #[getter]
    fn execution_plan<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.state()
            .execution_plan
            .as_ref()
            .map(|p| Ok(pythonize::pythonize(py, p)?))
            .transpose()
    }

    /// Records a report file the phase wrote.
    fn add_report(&self, path: PathBuf) {
        self.state().reports.push(path);
    }
}

/// A phase implemented by a Python object.
struct PythonPhase {
    object: Py<PyAny>,
    name: String,
    id: PhaseId,
}

impl PythonPhase {
    fn new(object: &Bound<'_, PyAny>) -> PyResult<Self> {
        let name: String = object.getattr("name")?.extract()?;
        if !object.getattr("run")?.is_callable() {
            return Err(PyMiyabiError(Error::Config(format!("phase {name:?}: `run` is not callable"))).into());
        }
        let id = if object.hasattr("theta")? {
            PhaseId::from_theta(object.getattr("theta")?.extract()?)
        } else {
            PhaseId::from_name(&name)
        };
        let id = id.ok_or_else(|| {
            PyMiyabiError(Error::Config(format!(
                "phase {name:?}: set `theta` to 1–6, or name it after a phase (discovery, planning, optimization, deployment, monitoring, learning)"
            )))
        })?;
        Ok(Self {
            object: object.clone().unbind(),
            name,
            id,
        })
    }
}

#[async_trait]
impl Phase for PythonPhase {
    fn id(&self) -> PhaseId {
        self.id
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    async fn run(&self, ctx: &mut CycleContext) -> miyabi_aws::Result<PhaseOutcome> {
        // The world state is shared with the Python context, without a copy.
        let lent_world = ctx.artefacts.get_shared::<WorldState>();
        let lent = ContextState {
            iteration: ctx.iteration(),
            world: lent_world.clone().map(|inner| PyWorldState { inner }),
            out_dir: ctx.output.dir().map(std::path::Path::to_path_buf),
            reports: Vec::new(),
            applicable_changes: None,
            plan: ctx.artefacts.get::<Plan>().cloned(),
            execution_plan: ctx.artefacts.get::<ExecutionPlan>().cloned(),
        };
        let object = Python::attach(|py| self.object.clone_ref(py));
        let joined = tokio::task::spawn_blocking(move || {
            Python::attach(|py| {
                let context = match Py::new(
                    py,
                    PyPhaseContext {
                        state: Mutex::new(lent),
                    },
                ) {
                    Ok(context) => context,
                    Err(e) => return Err((e, ContextState::default())),
                };
                let outcome = object.call_method1(py, "run", (context.clone_ref(py),)).map(drop);
                let state = std::mem::take(&mut *context.get().state());
                match outcome {
                    Ok(()) => Ok(state),
                    Err(e) => Err((e, state)),
                }
            })
        })
        .await;
        let (state, error) = match joined {
            Ok(Ok(state)) => (Some(state), None),
            Ok(Err((error, state))) => (Some(state), Some(error)),
            Err(join) => (None, Some(pyo3::exceptions::PyRuntimeError::new_err(join.to_string()))),
        };
        let mut outcome = PhaseOutcome::nothing();
        if let Some(state) = state {
            if let Some(world) = state.world {
                let same = lent_world.as_ref().is_some_and(|lent| Arc::ptr_eq(lent, &world.inner));
                if !same {
                    ctx.artefacts.put_shared(world.inner);
                }
            }
            for path in state.reports {
                ctx.output.record(path);
            }
            outcome.applicable = state.applicable_changes;
        }
        match error {
            None => Ok(outcome),
            Some(error) => Err(Error::Foreign {
                phase: self.name.clone(),
                message: error.to_string(),
                payload: ForeignPayload(Arc::new(error)),
            }),
        }
    }
}

/// The loop: six θ slots, Rust or Python phases in each, run until convergence.
#[pyclass(name = "Cycle", module = "miyabi_aws._native", frozen)]
pub(crate) struct PyCycle {
    cycle: Cycle,
}

#[pymethods]
impl PyCycle {
    /// A cycle of `phases` (each placed in its θ slot), at most `max_iterations` times.
    #[new]
    #[pyo3(signature = (phases, *, max_iterations=10))]
    fn new(phases: Vec<Bound<'_, PyAny>>, max_iterations: u32) -> PyResult<Self> {
        let mut cycle = Cycle::new().with_max_iterations(max_iterations);
        for phase in phases {
            let phase: Arc<dyn Phase> = match phase.cast::<PyRustPhase>() {
                Ok(rust) => Arc::clone(&rust.get().phase),
                Err(_) => Arc::new(PythonPhase::new(&phase)?),
            };
            cycle = cycle.with_phase(phase);
        }
        Ok(Self { cycle })
    }

    /// The phases' names, in loop order.
    #[getter]
    fn phases(&self) -> Vec<String> {
        self.cycle.phases().map(|p| p.name()).collect()
    }

    /// Runs the loop over one AWS session (the standard configuration, with `profile` and
    /// `endpoint_url` if given). Raises the failing phase's error (a Python phase's own
    /// exception unchanged); otherwise returns the report.
    #[pyo3(signature = (*, out_dir=None, world=None, catalog=None, endpoint_url=None, profile=None))]
    fn run(
        &self,
        py: Python<'_>,
        out_dir: Option<PathBuf>,
        world: Option<PyWorldState>,
        catalog: Option<PathBuf>,
        endpoint_url: Option<String>,
        profile: Option<String>,
    ) -> PyResult<PyCycleReport> {
        let aws = Arc::new(crate::phases::session(profile, endpoint_url));
        let mut ctx = CycleContext::new(aws).with_catalog(Arc::new(load_catalog(catalog)?));
        if let Some(dir) = out_dir {
            ctx = ctx.with_out_dir(dir);
        }
        if let Some(world) = world {
            ctx.artefacts.put_shared(world.inner);
        }
        let cycle = self.cycle.clone();
        block_on(py, async move {
            let report = cycle.run(&mut ctx).await;
            match report.stop {
                StopReason::PhaseFailed { error, .. } => Err(PyMiyabiError(error).into()),
                stop => Ok(PyCycleReport {
                    iterations: report.iterations,
                    converged: matches!(stop, StopReason::Converged { .. }),
                    stop: stop.to_string(),
                    world: ctx
                        .artefacts
                        .get_shared::<WorldState>()
                        .map(|inner| PyWorldState { inner }),
                    reports: ctx.output.written().to_vec(),
                }),
            }
        })
    }
}

/// What a cycle run did: per-iteration phase timings, why it stopped, the final world state.
#[pyclass(name = "CycleReport", module = "miyabi_aws._native", frozen)]
pub(crate) struct PyCycleReport {
    iterations: Vec<IterationRecord>,
    /// True when the convergence rule ended the loop.
    #[pyo3(get)]
    converged: bool,
    /// Why the loop stopped, in words.
    #[pyo3(get)]
    stop: String,
    /// The final world state.
    #[pyo3(get)]
    world: Option<PyWorldState>,
    /// Files the phases wrote.
    #[pyo3(get)]
    reports: Vec<PathBuf>,
}

#[pymethods]
impl PyCycleReport {
    /// Each iteration: `{"index", "phases": [{"theta", "name", "duration_s", "error"}], "targets"}`.
    #[getter]
    fn iterations<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.iterations
            .iter()
            .map(|it| {
                let record = PyDict::new(py);
                record.set_item("index", it.index)?;
                let phases = it
                    .phases
                    .iter()
                    .map(|p| {
                        let phase = PyDict::new(py);
                        phase.set_item("theta", p.id.theta())?;
                        phase.set_item("name", &p.name)?;
                        phase.set_item("duration_s", p.duration.as_secs_f64())?;
                        phase.set_item("error", &p.error)?;
                        Ok(phase)
                    })
                    .collect::<PyResult<Vec<_>>>()?;
                record.set_item("phases", phases)?;
                record.set_item("targets", pythonize::pythonize(py, &it.targets)?)?;
                Ok(record)
            })
            .collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "CycleReport(iterations={}, stop={:?})",
            self.iterations.len(),
            self.stop
        )
    }
}
