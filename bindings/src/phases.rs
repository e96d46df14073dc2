//! The Rust phases, reachable from Python: called directly (`discover`, `discover_async`,
//! `plan`, `optimize`, `deploy`) or placed in a `Cycle` as objects (`Discovery`, `Planning`,
//! `Optimization`, `Deployment`, all `RustPhase`s).

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use miyabi_aws::aws::{AwsOptions, AwsSession, LimitOptions};
use miyabi_aws::guardrails::Environment;
use miyabi_aws::phases::deployment::{self, Approval, Deployment, DeploymentConfig, Mode};
use miyabi_aws::phases::discovery::{Discovery, DiscoveryConfig};
use miyabi_aws::phases::learning::{KnowledgeBase, Learning, LearningConfig};
use miyabi_aws::phases::monitoring::{Monitoring, MonitoringConfig, WebhookSink};
use miyabi_aws::phases::optimization::{self, Optimization, OptimizationConfig};
use miyabi_aws::phases::planning::{self, Planning, PlanningConfig};
use miyabi_aws::plan::execution::ExecutionPlan;
use miyabi_aws::{Error, Phase};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::artefacts::{PyArtefact, PyExecutionPlan, PyPhaseOutcome};
use crate::context::PyPhaseContext;
use crate::errors::PyMiyabiError;
use crate::runtime::{block_on, detach};
use crate::world::{load_catalog, PyWorldState};

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyRustPhase>()?;
    m.add_class::<PyDiscovery>()?;
    m.add_class::<PyPlanning>()?;
    m.add_class::<PyOptimization>()?;
    m.add_class::<PyDeployment>()?;
    m.add_class::<PyLearning>()?;
    m.add_class::<PyMonitoring>()?;
    m.add_class::<PyKnowledgeBase>()?;
    m.add_function(wrap_pyfunction!(discover, m)?)?;
    m.add_function(wrap_pyfunction!(plan, m)?)?;
    m.add_function(wrap_pyfunction!(optimize, m)?)?;
    m.add_function(wrap_pyfunction!(deploy, m)?)?;
    m.add_function(wrap_pyfunction!(discover_async, m)?)?;
    Ok(())
}

/// A session over the standard AWS configuration with an optional profile and endpoint.
pub(crate) fn session(profile: Option<String>, endpoint_url: Option<String>) -> AwsSession {
    AwsSession::new(AwsOptions {
        profile,
        endpoint_url,
        ..AwsOptions::default()
    })
}

/// The request limits of `api_share` (the share of every bucket) over `quota_file`, checked
/// as the CLI checks `--api-share` and `--quota-file`.
pub(crate) fn limits(api_share: Option<f64>, quota_file: Option<&std::path::Path>) -> PyResult<LimitOptions> {
    let mut limits = LimitOptions::default();
    if let Some(path) = quota_file {
        limits = limits
            .with_quota_file(path)
            .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    }
    if let Some(share) = api_share {
        limits.share = share;
    }
    limits
        .validate()
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("api_share: {e}")))?;
    Ok(limits)
}

/// Reads `until` as a `datetime` (anything with `timestamp()`) or Unix seconds.
pub(crate) fn parse_until(until: Option<&Bound<'_, PyAny>>) -> PyResult<Option<DateTime<Utc>>> {
    let Some(until) = until else { return Ok(None) };
    let seconds: f64 = if until.hasattr("timestamp")? {
        until.call_method0("timestamp")?.extract()?
    } else {
        until.extract()?
    };
    #[allow(clippy::cast_possible_truncation)]
    let whole = seconds.floor() as i64;
    DateTime::from_timestamp(whole, 0)
        .map(Some)
        .ok_or_else(|| PyMiyabiError(Error::Config(format!("`until` out of range: {seconds}"))).into())
}

fn config(
    regions: Option<Vec<String>>,
    lookback_hours: u32,
    until: Option<&Bound<'_, PyAny>>,
) -> PyResult<DiscoveryConfig> {
    let config = DiscoveryConfig {
        regions: regions.unwrap_or_default(),
        lookback_hours,
        until: parse_until(until)?,
        ..DiscoveryConfig::default()
    };
    config.validate().map_err(PyMiyabiError)?;
    Ok(config)
}

/// θ1 in Rust: scans the estate and returns its assessed world state. A capture with failed
/// reads is returned marked partial (`is_partial`, `gaps`); refused credentials raise
/// `AwsError`. With `previous` (an earlier `WorldState`), CloudWatch is asked only for the
/// datapoints it does not hold yet.
#[pyfunction]
#[pyo3(signature = (regions=None, *, endpoint_url=None, profile=None, lookback_hours=336, until=None, catalog=None, previous=None))]
#[allow(clippy::too_many_arguments)] // Python keyword arguments
fn discover(
    py: Python<'_>,
    regions: Option<Vec<String>>,
    endpoint_url: Option<String>,
    profile: Option<String>,
    lookback_hours: u32,
    until: Option<&Bound<'_, PyAny>>,
    catalog: Option<PathBuf>,
    previous: Option<PyRef<'_, PyWorldState>>,
) -> PyResult<PyWorldState> {
    let discovery = building_on(Discovery::new(config(regions, lookback_hours, until)?), previous);
    let catalog = load_catalog(catalog)?;
    let aws = session(profile, endpoint_url);
    block_on(py, async move {
        let out = discovery.discover(&aws, &catalog).await.map_err(PyMiyabiError)?;
        Ok(PyWorldState::new(out.world))
    })
}

/// The discovery built on `previous`, when given.
fn building_on(discovery: Discovery, previous: Option<PyRef<'_, PyWorldState>>) -> Discovery {
    match previous {
        Some(world) => discovery.with_previous(world.inner.clone()),
        None => discovery,
    }
}

/// `discover` as a coroutine on the shared tokio runtime.
#[pyfunction]
#[pyo3(signature = (regions=None, *, endpoint_url=None, profile=None, lookback_hours=336, until=None, catalog=None, previous=None))]
#[allow(clippy::too_many_arguments)] // Python keyword arguments
fn discover_async<'py>(
    py: Python<'py>,
    regions: Option<Vec<String>>,
    endpoint_url: Option<String>,
    profile: Option<String>,
    lookback_hours: u32,
    until: Option<&Bound<'py, PyAny>>,
    catalog: Option<PathBuf>,
    previous: Option<PyRef<'py, PyWorldState>>,
) -> PyResult<Bound<'py, PyAny>> {
    let discovery = building_on(Discovery::new(config(regions, lookback_hours, until)?), previous);
    let catalog = load_catalog(catalog)?;
    let aws = session(profile, endpoint_url);
    pyo3_async_runtimes::tokio::future_into_py(py, async move {
        let out = discovery.discover(&aws, &catalog).await.map_err(PyMiyabiError)?;
        Ok(PyWorldState::new(out.world))
    })
}

/// A Rust phase, placed in a `Cycle` like a Python one. The base of `Discovery`, `Planning` and
/// `Optimization`.
#[pyclass(name = "RustPhase", module = "miyabi_aws._native", frozen, subclass)]
pub(crate) struct PyRustPhase {
    pub(crate) phase: Arc<dyn Phase>,
}

impl PyRustPhase {
    fn init(phase: impl Phase + 'static) -> PyClassInitializer<Self> {
        PyClassInitializer::from(Self { phase: Arc::new(phase) })
    }
}

#[pymethods]
impl PyRustPhase {
    /// The phase's name in reports.
    #[getter]
    fn name(&self) -> String {
        self.phase.name()
    }

    /// The θ slot, 1–6.
    #[getter]
    fn theta(&self) -> u8 {
        self.phase.id().theta()
    }

    /// Runs this Rust phase on the context of the Python phase running now (or of a hook):
    /// a Python phase delegates to it, then edits what it produced.
    fn run(&self, py: Python<'_>, context: &Bound<'_, PyPhaseContext>) -> PyResult<PyPhaseOutcome> {
        let context = context.get();
        let mut ctx = context.take()?;
        let phase = Arc::clone(&self.phase);
        // Even a panic in the phase ends the borrow, so the context always goes back.
        let result = block_on(py, async {
            phase.run(&mut ctx).await.map_err(|e| PyMiyabiError(e).into())
        });
        context.give_back(ctx);
        Ok(PyPhaseOutcome { inner: result? })
    }

    fn __repr__(&self) -> String {
        format!(
            "RustPhase(theta={}, name={:?})",
            self.phase.id().theta(),
            self.phase.name()
        )
    }
}

/// θ1 in Rust as a phase object for `Cycle`.
#[pyclass(name = "Discovery", module = "miyabi_aws._native", frozen, extends = PyRustPhase)]
pub(crate) struct PyDiscovery;

#[pymethods]
impl PyDiscovery {
    #[new]
    #[pyo3(signature = (regions=None, *, lookback_hours=336, until=None))]
    fn new(
        regions: Option<Vec<String>>,
        lookback_hours: u32,
        until: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let discovery = Discovery::new(config(regions, lookback_hours, until)?);
        Ok(PyRustPhase::init(discovery).add_subclass(Self))
    }
}

/// θ2 in Rust as a phase object for `Cycle`.
#[pyclass(name = "Planning", module = "miyabi_aws._native", frozen, extends = PyRustPhase)]
pub(crate) struct PyPlanning;

#[pymethods]
impl PyPlanning {
    #[new]
    fn new() -> PyClassInitializer<Self> {
        PyRustPhase::init(Planning::default()).add_subclass(Self)
    }
}

/// θ3 in Rust as a phase object for `Cycle`.
#[pyclass(name = "Optimization", module = "miyabi_aws._native", frozen, extends = PyRustPhase)]
pub(crate) struct PyOptimization;

#[pymethods]
impl PyOptimization {
    #[new]
    #[pyo3(signature = (*, max_changes=None, deny=None, environment="production"))]
    fn new(
        max_changes: Option<usize>,
        deny: Option<Vec<String>>,
        environment: &str,
    ) -> PyResult<PyClassInitializer<Self>> {
        let config = optimization_config(max_changes, deny, environment)?;
        Ok(PyRustPhase::init(Optimization::new(config)).add_subclass(Self))
    }
}

fn optimization_config(
    max_changes: Option<usize>,
    deny: Option<Vec<String>>,
    environment: &str,
) -> PyResult<OptimizationConfig> {
    let mut config = OptimizationConfig::default();
    config.guardrails.max_changes = max_changes;
    config.guardrails.deny_list.extend(deny.unwrap_or_default());
    config.guardrails.environment = match environment {
        "production" => Environment::Production,
        "development" => Environment::Development,
        other => {
            return Err(PyMiyabiError(Error::Config(format!(
                "environment must be \"production\" or \"development\", got {other:?}"
            )))
            .into())
        }
    };
    config
        .rightsizing
        .validate()
        .map_err(|e| PyMiyabiError(Error::Config(format!("optimization: {e}"))))?;
    Ok(config)
}

/// θ2: the cost and security plan of a world state, as a dict (`cost`, `security`, `manual`).
#[pyfunction]
#[pyo3(signature = (world, *, catalog=None))]
fn plan(py: Python<'_>, world: PyWorldState, catalog: Option<PathBuf>) -> PyResult<Bound<'_, PyAny>> {
    let catalog = load_catalog(catalog)?;
    let plan = detach(py, || {
        planning::plan(&world.inner, &catalog, &PlanningConfig::default())
    })?;
    Ok(pythonize::pythonize(py, &plan)?)
}

/// θ3: right-sizing verdicts, θ3's changes, the execution plan of every θ2 and θ3 change and
/// the purchase recommendations on the estate it leaves, as a dict (`recommendations`,
/// `changes`, `execution_plan`, `purchases`).
#[pyfunction]
#[pyo3(signature = (world, *, max_changes=None, deny=None, environment="production", catalog=None))]
fn optimize<'py>(
    py: Python<'py>,
    world: PyWorldState,
    max_changes: Option<usize>,
    deny: Option<Vec<String>>,
    environment: &str,
    catalog: Option<PathBuf>,
) -> PyResult<Bound<'py, PyAny>> {
    let catalog = load_catalog(catalog)?;
    let config = optimization_config(max_changes, deny, environment)?;
    let (out, purchases) = detach(py, || {
        let plan = planning::plan(&world.inner, &catalog, &PlanningConfig::default());
        let out = optimization::optimize(&world.inner, &plan, &catalog, &config);
        let purchases = optimization::purchases(&world.inner, &out.execution_plan, &catalog, &config.purchases);
        (out, purchases)
    })?;
    let result = PyDict::new(py);
    result.set_item("recommendations", pythonize::pythonize(py, &out.recommendations)?)?;
    result.set_item("changes", pythonize::pythonize(py, &out.changes)?)?;
    result.set_item("execution_plan", pythonize::pythonize(py, &out.execution_plan)?)?;
    result.set_item("purchases", pythonize::pythonize(py, &purchases)?)?;
    Ok(result.into_any())
}

/// `"all"`, or step ids.
fn approval(approve: Option<&Bound<'_, PyAny>>) -> PyResult<Approval> {
    let Some(approve) = approve else {
        return Ok(Approval::Nothing);
    };
    if let Ok(word) = approve.extract::<String>() {
        return if word == "all" {
            Ok(Approval::All)
        } else {
            Err(PyMiyabiError(Error::Config(format!(
                "approve must be \"all\" or a list of step ids, got {word:?}"
            )))
            .into())
        };
    }
    Ok(Approval::Ids(approve.extract::<Vec<String>>()?.into_iter().collect()))
}

fn deployment(
    regions: Option<Vec<String>>,
    apply: bool,
    approve: Option<&Bound<'_, PyAny>>,
    deny: Option<Vec<String>>,
) -> PyResult<Deployment> {
    let mut config = DeploymentConfig {
        mode: if apply { Mode::Apply } else { Mode::DryRun },
        approval: approval(approve)?,
        ..DeploymentConfig::default()
    };
    config.guardrails.deny_list.extend(deny.unwrap_or_default());
    Ok(Deployment::new(regions.unwrap_or_default()).with_config(config))
}

/// θ4 in Rust as a phase object for `Cycle`: deploys θ3's execution plan, dry-run unless
/// `apply=True`.
#[pyclass(name = "Deployment", module = "miyabi_aws._native", frozen, extends = PyRustPhase)]
pub(crate) struct PyDeployment;

#[pymethods]
impl PyDeployment {
    #[new]
    #[pyo3(signature = (regions=None, *, apply=false, approve=None, deny=None))]
    fn new(
        regions: Option<Vec<String>>,
        apply: bool,
        approve: Option<&Bound<'_, PyAny>>,
        deny: Option<Vec<String>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let phase = deployment(regions, apply, approve, deny)?;
        Ok(PyRustPhase::init(phase).add_subclass(Self))
    }
}

/// θ4: deploys an execution plan (the dict `optimize` returns under `execution_plan`, or a
/// reviewed `execution_plan.json` loaded with `json`) and returns the deployment report as a
/// dict. Dry-run unless `apply=True`; steps needing approval run only when `approve` is `"all"`
/// or lists their ids.
#[pyfunction]
#[pyo3(signature = (execution_plan, regions=None, *, apply=false, approve=None, deny=None, endpoint_url=None, profile=None))]
#[allow(clippy::too_many_arguments)] // keyword arguments of one Python function
fn deploy<'py>(
    py: Python<'py>,
    execution_plan: &Bound<'py, PyAny>,
    regions: Option<Vec<String>>,
    apply: bool,
    approve: Option<&Bound<'py, PyAny>>,
    deny: Option<Vec<String>>,
    endpoint_url: Option<String>,
    profile: Option<String>,
) -> PyResult<Bound<'py, PyAny>> {
    let plan: Arc<ExecutionPlan> = match execution_plan.cast::<PyExecutionPlan>() {
        Ok(plan) => Arc::clone(&plan.get().inner),
        Err(_) => Arc::new(PyExecutionPlan::parse(execution_plan)?),
    };
    let phase = deployment(regions, apply, approve, deny)?;
    let aws = session(profile, endpoint_url);
    let report: deployment::DeploymentReport = block_on(py, async { Ok(phase.deploy(&aws, &plan).await) })?;
    Ok(pythonize::pythonize(py, &report)?)
}

/// θ6 in Rust as a phase object for `Cycle`: compares worlds, judges the last deployment,
/// adapts the headroom θ3 uses, and keeps outcomes in the knowledge base at `knowledge_base`.
#[pyclass(name = "Learning", module = "miyabi_aws._native", frozen, extends = PyRustPhase)]
pub(crate) struct PyLearning;

#[pymethods]
impl PyLearning {
    #[new]
    #[pyo3(signature = (*, knowledge_base=None, cpu_alarm_percent=80.0))]
    fn new(knowledge_base: Option<PathBuf>, cpu_alarm_percent: f64) -> PyClassInitializer<Self> {
        let config = LearningConfig {
            knowledge_base,
            cpu_alarm_percent,
            ..LearningConfig::default()
        };
        PyRustPhase::init(Learning::new(config)).add_subclass(Self)
    }
}

/// The knowledge base θ6 keeps: every change's outcome and the learned headroom, readable from
/// Python. Opening takes the file's lock; close it (or use `with`) to let a cycle write again.
#[pyclass(name = "KnowledgeBase", module = "miyabi_aws._native")]
pub(crate) struct PyKnowledgeBase {
    inner: Option<KnowledgeBase>,
}

impl PyKnowledgeBase {
    fn kb(&self) -> PyResult<&KnowledgeBase> {
        self.inner
            .as_ref()
            .ok_or_else(|| PyMiyabiError(Error::Config("the knowledge base is closed".into())).into())
    }
}

#[pymethods]
impl PyKnowledgeBase {
    #[new]
    fn new(path: PathBuf) -> PyResult<Self> {
        let kb = KnowledgeBase::open(path).map_err(|e| PyMiyabiError(Error::Knowledge(e)))?;
        Ok(Self { inner: Some(kb) })
    }

    /// Every outcome, oldest first, as dicts.
    fn outcomes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let outcomes = self.kb()?.outcomes().map_err(|e| PyMiyabiError(Error::Knowledge(e)))?;
        Ok(pythonize::pythonize(py, &outcomes)?)
    }

    /// The learned headroom per instance family, percent.
    fn headroom(&self) -> PyResult<std::collections::BTreeMap<String, f64>> {
        self.kb()?
            .headroom()
            .map_err(|e| PyMiyabiError(Error::Knowledge(e)).into())
    }

    /// Releases the file.
    fn close(&mut self) {
        self.inner = None;
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &mut self,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) {
        self.close();
    }
}

/// θ5 in Rust as a phase object for `Cycle`: CPU alarms and a dashboard on what θ4 changed,
/// the post-change CPU read back, a cost alarm on the engine's own monthly estimate (over
/// `cost_budget_usd`, World0's estimate by default), and the result sent as a JSON POST to
/// `webhook` (an `http://` URL).
#[pyclass(name = "Monitoring", module = "miyabi_aws._native", frozen, extends = PyRustPhase)]
pub(crate) struct PyMonitoring;

#[pymethods]
impl PyMonitoring {
    #[new]
    #[pyo3(signature = (*, webhook=None, cpu_alarm_percent=80.0, cost_budget_usd=None))]
    fn new(webhook: Option<String>, cpu_alarm_percent: f64, cost_budget_usd: Option<f64>) -> PyClassInitializer<Self> {
        let mut phase = Monitoring::new(MonitoringConfig {
            cpu_alarm_percent,
            cost_budget_usd,
            ..MonitoringConfig::default()
        });
        if let Some(url) = webhook {
            phase = phase.with_sink(Arc::new(WebhookSink::new(url)));
        }
        PyRustPhase::init(phase).add_subclass(Self)
    }
}
