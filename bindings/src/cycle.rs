//! `Cycle`: the Rust loop, holding Rust phases and phases written in Python side by side.
//!
//! A Python phase is any object with a `name` and a `run(context)` method, plus `theta` (1–6)
//! unless its name is a phase's name (`discovery`, `planning`, …). It runs on a blocking
//! thread that takes the interpreter only for the call; its exception travels through the Rust
//! cycle untouched and is raised again, type and message intact.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use miyabi_aws::artefact::Artefacts;
use miyabi_aws::aws::{AwsOptions, AwsSession};
use miyabi_aws::clock::Clock;
use miyabi_aws::cycle::stop::{Convergence, IterationLimit, NothingApplied, StopRule};
use miyabi_aws::cycle::{IterationRecord, StopReason};
use miyabi_aws::knowledge::KnowledgeBase;
use miyabi_aws::{Cycle, CycleContext, CycleHook, Error, ForeignPayload, Phase, PhaseId, PhaseOutcome, WorldState};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::artefacts::{Generation, Kind, PyPhaseOutcome};
use crate::context::{awaited, lend};
use crate::errors::PyMiyabiError;
use crate::phases::PyRustPhase;
use crate::runtime::block_on;
use crate::world::{load_catalog, PyWorldState};

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyCycle>()?;
    m.add_class::<crate::context::PyPhaseContext>()?;
    m.add_class::<PyCycleReport>()?;
    m.add_class::<PyStopRule>()?;
    Ok(())
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

/// A Python exception on its way through the Rust cycle, to be raised again unchanged.
fn foreign(phase: String, error: PyErr) -> Error {
    Error::Foreign {
        phase,
        message: error.to_string(),
        payload: ForeignPayload(Arc::new(error)),
    }
}

/// What `run` returned: `None`, or a `PhaseOutcome`.
fn returned_outcome(value: &Bound<'_, PyAny>) -> PyResult<Option<PhaseOutcome>> {
    if value.is_none() {
        return Ok(None);
    }
    match value.cast::<PyPhaseOutcome>() {
        Ok(outcome) => Ok(Some(outcome.get().inner)),
        Err(_) => Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "a phase's run must return None or a PhaseOutcome, not {}",
            value.get_type().name()?
        ))),
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
        let object = Python::attach(|py| self.object.clone_ref(py));
        let (result, counted) = lend(ctx, move |py, context| {
            let returned = object.call_method1(py, "run", (context,))?;
            returned_outcome(&awaited(py, returned.into_bound(py))?)
        })
        .await;
        match result {
            // What `run` returned wins over what it set on the context, field by field.
            Ok(returned) => Ok(PhaseOutcome {
                applicable: returned.and_then(|o| o.applicable).or(counted.applicable),
                applied: returned.and_then(|o| o.applied).or(counted.applied),
            }),
            Err(error) => Err(foreign(self.name.clone(), error)),
        }
    }
}

/// A Python callable run after every phase: `hook(theta, outcome, context)`, sync or async.
struct PythonHook {
    callable: Py<PyAny>,
}

#[async_trait]
impl CycleHook for PythonHook {
    async fn after(&self, phase: PhaseId, outcome: &PhaseOutcome, ctx: &mut CycleContext) -> miyabi_aws::Result<()> {
        let callable = Python::attach(|py| self.callable.clone_ref(py));
        let outcome = PyPhaseOutcome { inner: *outcome };
        let (result, _) = lend(ctx, move |py, context| {
            let returned = callable.call1(py, (phase.theta(), outcome, context))?;
            awaited(py, returned.into_bound(py)).map(drop)
        })
        .await;
        result.map_err(|error| foreign(format!("hook after {phase}"), error))
    }
}

/// A rule that may end the loop after an iteration: one of the built-in rules, or any object
/// with an `id` and a `check(iteration)` that returns a reason to stop, or `None`.
#[pyclass(name = "StopRule", module = "miyabi_aws._native", frozen)]
pub(crate) struct PyStopRule {
    rule: Arc<dyn StopRule>,
}

#[pymethods]
impl PyStopRule {
    /// Stops when the iteration's plan holds no change that may be applied.
    #[staticmethod]
    fn convergence() -> Self {
        Self {
            rule: Arc::new(Convergence),
        }
    }

    /// Stops when a deploying phase ran and applied nothing.
    #[staticmethod]
    fn nothing_applied() -> Self {
        Self {
            rule: Arc::new(NothingApplied),
        }
    }

    /// Stops after `n` iterations (at least 1).
    #[staticmethod]
    fn iteration_limit(n: u32) -> Self {
        Self {
            rule: Arc::new(IterationLimit(n)),
        }
    }

    /// The rule's id.
    #[getter]
    fn id(&self) -> String {
        self.rule.id().to_owned()
    }

    fn __repr__(&self) -> String {
        format!("StopRule({:?})", self.rule.id())
    }
}

/// A stop rule written in Python.
struct PythonStopRule {
    id: String,
    object: Py<PyAny>,
}

impl StopRule for PythonStopRule {
    fn id(&self) -> &str {
        &self.id
    }

    fn check(&self, iteration: &IterationRecord) -> Option<StopReason> {
        Python::attach(|py| {
            let checked = iteration_dict(py, iteration)
                .and_then(|record| self.object.call_method1(py, "check", (record,)))
                .and_then(|reason| reason.extract::<Option<String>>(py));
            match checked {
                Ok(reason) => reason.map(|reason| StopReason::Rule {
                    rule: self.id.clone(),
                    reason,
                }),
                // A rule that cannot decide stops the loop, saying why, rather than let it run on.
                Err(error) => Some(StopReason::Rule {
                    rule: self.id.clone(),
                    reason: format!("the rule raised {error}"),
                }),
            }
        })
    }
}

fn stop_rule(object: &Bound<'_, PyAny>) -> PyResult<Arc<dyn StopRule>> {
    if let Ok(builtin) = object.cast::<PyStopRule>() {
        return Ok(Arc::clone(&builtin.get().rule));
    }
    let id: String = object.getattr("id")?.extract()?;
    if !object.getattr("check")?.is_callable() {
        return Err(PyMiyabiError(Error::Config(format!("stop rule {id:?}: `check` is not callable"))).into());
    }
    Ok(Arc::new(PythonStopRule {
        id,
        object: object.clone().unbind(),
    }))
}

/// "Now" from a Python callable that returns a `datetime` (or Unix seconds).
struct PythonClock {
    callable: Py<PyAny>,
}

impl std::fmt::Debug for PythonClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PythonClock")
    }
}

impl PythonClock {
    fn read(&self, py: Python<'_>) -> PyResult<DateTime<Utc>> {
        let now = self.callable.call0(py)?;
        crate::phases::parse_until(Some(now.bind(py)))?
            .ok_or_else(|| pyo3::exceptions::PyValueError::new_err("the clock returned nothing"))
    }
}

impl Clock for PythonClock {
    fn now(&self) -> DateTime<Utc> {
        // `Cycle.run` reads the clock once before the loop, so a clock that cannot be read at
        // all is refused there; a later failure is logged and the system time used.
        Python::attach(|py| self.read(py)).unwrap_or_else(|error| {
            tracing::error!(%error, "the cycle's clock failed; using the system time");
            Utc::now()
        })
    }
}

/// One iteration's record as a dict: `index`, `phases` (`theta`, `name`, `duration_s`,
/// `error`, `applicable`, `applied`), `applicable_changes`, `applied_changes`, `world`,
/// `targets`.
fn iteration_dict<'py>(py: Python<'py>, it: &IterationRecord) -> PyResult<Bound<'py, PyDict>> {
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
            phase.set_item("applicable", p.outcome.and_then(|o| o.applicable))?;
            phase.set_item("applied", p.outcome.and_then(|o| o.applied))?;
            Ok(phase)
        })
        .collect::<PyResult<Vec<_>>>()?;
    record.set_item("phases", phases)?;
    record.set_item("applicable_changes", it.applicable_changes)?;
    record.set_item("applied_changes", it.applied_changes)?;
    record.set_item("world", pythonize::pythonize(py, &it.world)?)?;
    record.set_item("targets", pythonize::pythonize(py, &it.targets)?)?;
    Ok(record)
}

/// The loop: six θ slots, Rust or Python phases in each, run until a stop rule holds.
#[pyclass(name = "Cycle", module = "miyabi_aws._native", frozen)]
pub(crate) struct PyCycle {
    cycle: Cycle,
    max_iterations: u32,
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
        Ok(Self { cycle, max_iterations })
    }

    /// The phases' names, in loop order.
    #[getter]
    fn phases(&self) -> Vec<String> {
        self.cycle.phases().map(|p| p.name()).collect()
    }

    /// Runs the loop over one AWS session (the standard configuration, with `profile` and
    /// `endpoint_url` if given), from `world` if given. `knowledge_base` is the file θ3 and θ6
    /// share; `clock` a callable returning "now"; `hooks` callables run after every phase as
    /// `hook(theta, outcome, context)`; `stop_rules` replace the default rules (convergence,
    /// nothing applied), while `max_iterations` always holds. `api_share` (default 0.5) and
    /// `quota_file` set the request limits as `--api-share` and `--quota-file` do (a bad value
    /// raises `ValueError`). Raises the failing phase's error (a Python phase's own exception
    /// unchanged); otherwise returns the report.
    #[pyo3(signature = (*, out_dir=None, world=None, catalog=None, endpoint_url=None, profile=None, knowledge_base=None, clock=None, hooks=None, stop_rules=None, api_share=None, quota_file=None))]
    #[allow(clippy::too_many_arguments)] // keyword arguments of one Python method
    fn run(
        &self,
        py: Python<'_>,
        out_dir: Option<PathBuf>,
        world: Option<PyWorldState>,
        catalog: Option<PathBuf>,
        endpoint_url: Option<String>,
        profile: Option<String>,
        knowledge_base: Option<PathBuf>,
        clock: Option<Bound<'_, PyAny>>,
        hooks: Option<Vec<Bound<'_, PyAny>>>,
        stop_rules: Option<Vec<Bound<'_, PyAny>>>,
        api_share: Option<f64>,
        quota_file: Option<PathBuf>,
    ) -> PyResult<PyCycleReport> {
        let aws = Arc::new(AwsSession::new(AwsOptions {
            profile,
            endpoint_url,
            limits: crate::phases::limits(api_share, quota_file.as_deref())?,
            ..AwsOptions::default()
        }));
        let mut ctx = CycleContext::new(aws).with_catalog(Arc::new(load_catalog(catalog)?));
        if let Some(dir) = out_dir {
            ctx = ctx.with_out_dir(dir);
        }
        if let Some(path) = knowledge_base {
            let kb = KnowledgeBase::open(path).map_err(|e| PyMiyabiError(Error::Knowledge(e)))?;
            ctx = ctx
                .with_knowledge_base(Arc::new(kb))
                .map_err(|e| PyMiyabiError(Error::Knowledge(e)))?;
        }
        if let Some(clock) = clock {
            let clock = PythonClock {
                callable: clock.unbind(),
            };
            clock.read(py)?;
            ctx = ctx.with_clock(Arc::new(clock));
        }
        if let Some(world) = world {
            ctx.artefacts.put_shared(world.inner);
        }
        let mut cycle = self.cycle.clone();
        for hook in hooks.unwrap_or_default() {
            if !hook.is_callable() {
                return Err(PyMiyabiError(Error::Config("a hook must be callable".into())).into());
            }
            cycle = cycle.with_hook(Arc::new(PythonHook {
                callable: hook.unbind(),
            }));
        }
        if let Some(rules) = stop_rules {
            let rules = rules.iter().map(stop_rule).collect::<PyResult<Vec<_>>>()?;
            cycle = cycle.with_stop_rules(rules).with_max_iterations(self.max_iterations);
        }
        block_on(py, async move {
            let report = cycle.run(&mut ctx).await;
            let partial = report.partial();
            match report.stop {
                StopReason::PhaseFailed { error, .. } | StopReason::HookFailed { error, .. } => {
                    Err(PyMiyabiError(error).into())
                }
                stop => Ok(PyCycleReport {
                    partial,
                    iterations: report.iterations,
                    converged: matches!(stop, StopReason::Converged { .. }),
                    stop: stop.to_string(),
                    world: ctx
                        .artefacts
                        .get_shared::<WorldState>()
                        .map(|inner| PyWorldState { inner }),
                    artefacts: ctx.artefacts,
                    reports: ctx.output.written().to_vec(),
                }),
            }
        })
    }
}

/// What a cycle run did: per-iteration records, why it stopped, the final artefacts.
#[pyclass(name = "CycleReport", module = "miyabi_aws._native", frozen)]
pub(crate) struct PyCycleReport {
    iterations: Vec<IterationRecord>,
    artefacts: Artefacts,
    /// True when the convergence rule ended the loop.
    #[pyo3(get)]
    converged: bool,
    /// True when the latest world state was captured in part (what its gaps name was left
    /// alone).
    #[pyo3(get)]
    partial: bool,
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
    /// Each iteration: `{"index", "phases": [{"theta", "name", "duration_s", "error",
    /// "applicable", "applied"}], "applicable_changes", "applied_changes", "world", "targets"}`.
    #[getter]
    fn iterations<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.iterations.iter().map(|it| iteration_dict(py, it)).collect()
    }

    /// The last artefact of class `cls` the cycle held (for example `miyabi_aws.ExecutionPlan`).
    fn get(&self, py: Python<'_>, cls: &Bound<'_, PyAny>) -> PyResult<Option<Py<PyAny>>> {
        Kind::of_class(cls)?.get(py, &self.artefacts, Generation::Current)
    }

    fn __repr__(&self) -> String {
        format!(
            "CycleReport(iterations={}, stop={:?})",
            self.iterations.len(),
            self.stop
        )
    }
}
