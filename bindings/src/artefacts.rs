//! The cycle's artefacts as Python classes: one class per Rust type, sharing the Rust value
//! (`Arc`) rather than copying it, with a read-only property per field, `to_dict`, `to_json` and
//! `from_dict`. [`KINDS`] ties each class to its slot in the cycle's artefact store, so that a
//! phase context can get and put any of them by class.

use std::sync::Arc;

use miyabi_aws::artefact::{Artefact, Artefacts};
use miyabi_aws::knowledge::{ChangeTimes, LearnedHeadroom};
use miyabi_aws::phases::deployment::DeploymentReport;
use miyabi_aws::phases::learning::LearningReport;
use miyabi_aws::phases::monitoring::MonitoringReport;
use miyabi_aws::phases::optimization::Recommendations;
use miyabi_aws::plan::execution::ExecutionPlan;
use miyabi_aws::plan::Plan;
use miyabi_aws::PhaseOutcome;
use pyo3::prelude::*;
use pyo3::types::PyType;
use pyo3::PyClass;
use serde::de::DeserializeOwned;

use crate::errors::ArtefactError;
use crate::world::PyWorldState;

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPlan>()?;
    m.add_class::<PyExecutionPlan>()?;
    m.add_class::<PyRecommendations>()?;
    m.add_class::<PyDeploymentReport>()?;
    m.add_class::<PyMonitoringReport>()?;
    m.add_class::<PyLearningReport>()?;
    m.add_class::<PyLearnedHeadroom>()?;
    m.add_class::<PyChangeTimes>()?;
    m.add_class::<PyPhaseOutcome>()?;
    Ok(())
}

/// A Python class that stands for one artefact type of the store.
pub(crate) trait PyArtefact: PyClass + Into<PyClassInitializer<Self>> + Sized {
    /// The Rust type.
    type Inner: Artefact + DeserializeOwned;

    fn wrap(inner: Arc<Self::Inner>) -> Self;
    fn shared(&self) -> Arc<Self::Inner>;

    /// Reads one from plain Python objects, checking the rules beyond its shape.
    fn parse(value: &Bound<'_, PyAny>) -> PyResult<Self::Inner>;
}

/// The rules a value must hold beyond its JSON shape, checked when it comes from Python.
pub(crate) trait Checked {
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

impl Checked for ExecutionPlan {
    fn check(&self) -> Result<(), String> {
        self.validate().map_err(|v| v.to_string())
    }
}

impl Checked for Plan {}
impl Checked for Recommendations {}
impl Checked for DeploymentReport {}
impl Checked for MonitoringReport {}
impl Checked for LearningReport {}
impl Checked for LearnedHeadroom {}
impl Checked for ChangeTimes {}

impl PyArtefact for PyWorldState {
    type Inner = miyabi_aws::WorldState;

    fn parse(value: &Bound<'_, PyAny>) -> PyResult<Self::Inner> {
        crate::world::world_from_dict(value)
    }

    fn wrap(inner: Arc<Self::Inner>) -> Self {
        Self { inner }
    }

    fn shared(&self) -> Arc<Self::Inner> {
        Arc::clone(&self.inner)
    }
}

/// Which of a type's three values in the store.
#[derive(Clone, Copy)]
pub(crate) enum Generation {
    /// This iteration's.
    Current,
    /// What the previous iteration ended with.
    Previous,
    /// The first one of the cycle (World0 for the world state).
    First,
}

type Getter = fn(Python<'_>, &Artefacts, Generation) -> PyResult<Option<Py<PyAny>>>;
type Putter = fn(&mut Artefacts, &Bound<'_, PyAny>) -> PyResult<()>;

/// How the context reaches one artefact class's slot.
pub(crate) struct Kind {
    /// The Python class's name.
    pub name: &'static str,
    is_class: fn(&Bound<'_, PyAny>) -> bool,
    is_instance: fn(&Bound<'_, PyAny>) -> bool,
    get: Getter,
    put: Putter,
}

impl Kind {
    const fn of<C: PyArtefact>(name: &'static str) -> Self {
        Self {
            name,
            is_class: is_class::<C>,
            is_instance: is_instance::<C>,
            get: get::<C>,
            put: put::<C>,
        }
    }

    /// The kind whose class is `cls`.
    pub(crate) fn of_class(cls: &Bound<'_, PyAny>) -> PyResult<&'static Self> {
        KINDS
            .iter()
            .find(|k| (k.is_class)(cls))
            .ok_or_else(|| not_an_artefact(cls))
    }

    /// The kind of `value`, an instance of one of the classes.
    pub(crate) fn of_value(value: &Bound<'_, PyAny>) -> PyResult<&'static Self> {
        KINDS
            .iter()
            .find(|k| (k.is_instance)(value))
            .ok_or_else(|| not_an_artefact(value))
    }

    pub(crate) fn get(
        &self,
        py: Python<'_>,
        artefacts: &Artefacts,
        generation: Generation,
    ) -> PyResult<Option<Py<PyAny>>> {
        (self.get)(py, artefacts, generation)
    }

    pub(crate) fn put(&self, artefacts: &mut Artefacts, value: &Bound<'_, PyAny>) -> PyResult<()> {
        (self.put)(artefacts, value)
    }
}

fn not_an_artefact(what: &Bound<'_, PyAny>) -> PyErr {
    let names: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
    pyo3::exceptions::PyTypeError::new_err(format!(
        "{} is not an artefact class; the artefacts are {}",
        what.repr().map_or_else(|_| "?".into(), |r| r.to_string()),
        names.join(", ")
    ))
}

fn is_class<C: PyArtefact>(cls: &Bound<'_, PyAny>) -> bool {
    cls.is(cls.py().get_type::<C>())
}

fn is_instance<C: PyArtefact>(value: &Bound<'_, PyAny>) -> bool {
    value.is_instance_of::<C>()
}

fn get<C: PyArtefact>(py: Python<'_>, artefacts: &Artefacts, generation: Generation) -> PyResult<Option<Py<PyAny>>> {
    let shared = match generation {
        Generation::Current => artefacts.get_shared::<C::Inner>(),
        Generation::Previous => artefacts.previous_shared::<C::Inner>(),
        Generation::First => artefacts.first_shared::<C::Inner>(),
    };
    shared
        .map(|inner| Ok(Py::new(py, C::wrap(inner))?.into_any()))
        .transpose()
}

/// Stores `value`: an instance of `C`, or a dict of its shape.
fn put<C: PyArtefact>(artefacts: &mut Artefacts, value: &Bound<'_, PyAny>) -> PyResult<()> {
    let inner = match value.cast::<C>() {
        Ok(instance) => instance.borrow().shared(),
        Err(_) => Arc::new(C::parse(value)?),
    };
    artefacts.put_shared(inner);
    Ok(())
}

/// Every artefact class, in phase order.
pub(crate) static KINDS: [Kind; 9] = [
    Kind::of::<PyWorldState>("WorldState"),
    Kind::of::<PyPlan>("Plan"),
    Kind::of::<PyExecutionPlan>("ExecutionPlan"),
    Kind::of::<PyRecommendations>("Recommendations"),
    Kind::of::<PyDeploymentReport>("DeploymentReport"),
    Kind::of::<PyMonitoringReport>("MonitoringReport"),
    Kind::of::<PyLearningReport>("LearningReport"),
    Kind::of::<PyLearnedHeadroom>("LearnedHeadroom"),
    Kind::of::<PyChangeTimes>("ChangeTimes"),
];

/// Reads a `T` from plain Python objects; the error names the path of what is wrong.
pub(crate) fn from_dict<T: Artefact + DeserializeOwned + Checked>(value: &Bound<'_, PyAny>) -> PyResult<T> {
    let mut de = pythonize::Depythonizer::from_object(value);
    let parsed: T = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| ArtefactError::new_err(format!("not {}: at {}: {}", T::WHAT, e.path(), e.inner())))?;
    parsed
        .check()
        .map_err(|e| ArtefactError::new_err(format!("not {}: {e}", T::WHAT)))?;
    Ok(parsed)
}

fn to_py<'py>(py: Python<'py>, value: &impl serde::Serialize) -> PyResult<Bound<'py, PyAny>> {
    pythonize::pythonize(py, value).map_err(PyErr::from)
}

/// One artefact class: `$py` (Python name `$name`) over `$rust`, with a property per field.
macro_rules! artefact_class {
    ($(#[$doc:meta])* $py:ident, $name:literal, $rust:ty, { $($(#[$fdoc:meta])* $getter:ident: $field:tt),+ $(,)? }) => {
        $(#[$doc])*
        #[pyclass(name = $name, module = "miyabi_aws._native", frozen, eq, from_py_object)]
        #[derive(Clone, PartialEq)]
        pub(crate) struct $py {
            pub(crate) inner: Arc<$rust>,
        }

        impl PyArtefact for $py {
            type Inner = $rust;

            fn wrap(inner: Arc<$rust>) -> Self {
                Self { inner }
            }

            fn shared(&self) -> Arc<$rust> {
                Arc::clone(&self.inner)
            }

            fn parse(value: &Bound<'_, PyAny>) -> PyResult<$rust> {
                from_dict::<$rust>(value)
            }
        }

        #[pymethods]
        impl $py {
            /// Builds one from plain Python objects, as `to_dict` returns them.
            #[classmethod]
            fn from_dict(_cls: &Bound<'_, PyType>, value: &Bound<'_, PyAny>) -> PyResult<Self> {
                Ok(Self::wrap(Arc::new(Self::parse(value)?)))
            }

            /// As plain Python objects.
            fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                to_py(py, &*self.inner)
            }

            /// As pretty JSON.
            fn to_json(&self) -> PyResult<String> {
                serde_json::to_string_pretty(&*self.inner)
                    .map_err(|e| ArtefactError::new_err(e.to_string()))
            }

            $(
                $(#[$fdoc])*
                #[getter]
                fn $getter<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                    to_py(py, &self.inner.$field)
                }
            )+

            fn __repr__(&self) -> String {
                format!("<{} ({})>", $name, <$rust as Artefact>::WHAT)
            }
        }
    };
}

artefact_class!(
    /// θ2's plan: cost and security changes, and what needs a human.
    PyPlan, "Plan", Plan, {
        /// Cost changes, as dicts.
        cost: cost,
        /// Security changes, as dicts.
        security: security,
        /// `[finding, what to do]` pairs that no change can carry out.
        manual: manual,
        /// Changes held back because their resource's capture is partial, as dicts.
        held: held,
    }
);

artefact_class!(
    /// θ3's execution plan, θ4's input: ordered steps in waves, and what the guardrails kept out.
    PyExecutionPlan, "ExecutionPlan", ExecutionPlan, {
        /// The document's schema version.
        schema_version: schema_version,
        /// The steps in execution order, as dicts.
        steps: steps,
        /// The waves, as dicts.
        waves: waves,
        /// Changes the deny-list, the max-changes limit or a partial capture kept out, as dicts.
        excluded: excluded,
        /// Estimated monthly saving of all steps, USD.
        monthly_saving_usd: monthly_saving_usd,
    }
);

artefact_class!(
    /// θ3's right-sizing verdicts.
    PyRecommendations, "Recommendations", Recommendations, {
        /// `{"resource", "recommendation"}` dicts, one per judged resource.
        items: 0,
    }
);

artefact_class!(
    /// θ4's report: what each step did.
    PyDeploymentReport, "DeploymentReport", DeploymentReport, {
        /// `"dry_run"` or `"apply"`.
        mode: mode,
        /// Every step's record, as dicts.
        steps: steps,
        /// The wave that failed and was rolled back, if any.
        failed_wave: failed_wave,
        /// Steps of an interrupted earlier apply that were reverted.
        recovered: recovered,
        /// When the apply ran, ISO 8601, or `None`.
        applied_at: applied_at,
    }
);

artefact_class!(
    /// θ5's report: alarms, dashboard, post-change readings, notifications.
    PyMonitoringReport, "MonitoringReport", MonitoringReport, {
        /// Alarms created, as dicts.
        alarms: alarms,
        /// Changed resources without a CPU alarm, and why.
        not_alarmed: not_alarmed,
        /// The dashboard's name, if one was written.
        dashboard: dashboard,
        /// Post-change CPU readings, as dicts.
        readings: readings,
        /// The cost alarm on the engine's published monthly estimate, as a dict (`None` in a
        /// dry run).
        cost_alarm: cost_alarm,
        /// What was notified, and each failing sink's error.
        notifications: notifications,
    }
);

artefact_class!(
    /// θ6's report: the world delta, judged outcomes, adapted headroom, anomalies.
    PyLearningReport, "LearningReport", LearningReport, {
        /// World n−1 against World n, when both exist.
        delta: delta,
        /// Outcomes judged this iteration, as dicts.
        outcomes: outcomes,
        /// Headroom per family for the next plan, percent.
        headroom: headroom,
        /// Anomalies found, as dicts.
        anomalies: anomalies,
        /// What the next iteration should do, in words.
        recommendations: recommendations,
    }
);

artefact_class!(
    /// Headroom per instance family that θ6 learned, read by θ3.
    PyLearnedHeadroom, "LearnedHeadroom", LearnedHeadroom, {
        /// `{family: percent}`.
        by_family: 0,
    }
);

artefact_class!(
    /// When each resource was last changed (Unix seconds): θ3 judges it on later data only.
    PyChangeTimes, "ChangeTimes", ChangeTimes, {
        /// `{resource id: unix seconds}`.
        by_resource: 0,
    }
);

/// What a phase found and did: the changes that may be applied, and those applied. `None`
/// means the phase does not count them.
#[pyclass(name = "PhaseOutcome", module = "miyabi_aws._native", frozen, eq, from_py_object)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct PyPhaseOutcome {
    pub(crate) inner: PhaseOutcome,
}

#[pymethods]
impl PyPhaseOutcome {
    #[new]
    #[pyo3(signature = (*, applicable=None, applied=None))]
    fn new(applicable: Option<usize>, applied: Option<usize>) -> Self {
        Self {
            inner: PhaseOutcome { applicable, applied },
        }
    }

    /// Changes found that may be applied.
    #[getter]
    fn applicable(&self) -> Option<usize> {
        self.inner.applicable
    }

    /// Changes applied and kept.
    #[getter]
    fn applied(&self) -> Option<usize> {
        self.inner.applied
    }

    fn __repr__(&self) -> String {
        let show = |n: Option<usize>| n.map_or_else(|| "None".to_owned(), |n| n.to_string());
        format!(
            "PhaseOutcome(applicable={}, applied={})",
            show(self.inner.applicable),
            show(self.inner.applied)
        )
    }
}
