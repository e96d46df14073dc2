//! `WorldState`: the world-state document, its resources and its assessment.

use std::path::PathBuf;
use std::sync::Arc;

use miyabi_aws::assessment::assess;
use miyabi_aws::catalog::PriceCatalog;
use miyabi_aws::world::{Completeness, WorldStateError};
use miyabi_aws::{Error, WorldState};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyType;
use serde::Serialize;

use crate::errors::{PyMiyabiError, PyMiyabiResult};
use crate::runtime::detach;

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyWorldState>()?;
    m.add_function(wrap_pyfunction!(assess_world, m)?)?;
    m.add_function(wrap_pyfunction!(world_state_schema, m)?)?;
    Ok(())
}

/// One capture of an AWS estate: inventory and assessment. Immutable; methods that change it
/// return a new one.
#[pyclass(name = "WorldState", module = "miyabi_aws._native", frozen, eq, from_py_object)]
#[derive(Clone, PartialEq)]
pub(crate) struct PyWorldState {
    pub(crate) inner: Arc<WorldState>,
}

impl PyWorldState {
    pub(crate) fn new(world: WorldState) -> Self {
        Self { inner: Arc::new(world) }
    }

    /// The Rust value, without a copy when Python holds no other reference.
    pub(crate) fn into_inner(self) -> WorldState {
        Arc::try_unwrap(self.inner).unwrap_or_else(|shared| (*shared).clone())
    }
}

fn to_py<'py>(py: Python<'py>, value: &impl Serialize) -> PyResult<Bound<'py, PyAny>> {
    pythonize::pythonize(py, value).map_err(PyErr::from)
}

pub(crate) fn load_catalog(path: Option<PathBuf>) -> PyMiyabiResult<PriceCatalog> {
    match path {
        Some(path) => PriceCatalog::load(path).map_err(|e| Error::from(e).into()),
        None => Ok(PriceCatalog::built_in().clone()),
    }
}

/// Reads a world state from plain Python objects: its shape, its version, then its rules.
pub(crate) fn world_from_dict(value: &Bound<'_, PyAny>) -> PyResult<WorldState> {
    let invalid = |e: WorldStateError| PyErr::from(PyMiyabiError(Error::WorldState(e)));
    let mut de = pythonize::Depythonizer::from_object(value);
    let world: WorldState = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        invalid(WorldStateError::Invalid {
            path: e.path().to_string(),
            message: e.inner().to_string(),
        })
    })?;
    if world.schema_version != miyabi_aws::world::SCHEMA_VERSION {
        return Err(invalid(WorldStateError::UnsupportedVersion {
            found: u64::from(world.schema_version),
            expected: miyabi_aws::world::SCHEMA_VERSION,
        }));
    }
    world.validate().map_err(invalid)?;
    Ok(world)
}

#[pymethods]
impl PyWorldState {
    /// Reads a world-state file.
    #[classmethod]
    fn load(_cls: &Bound<'_, PyType>, py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let world = detach(py, || WorldState::load(&path).map_err(|e| PyMiyabiError(e.into())))??;
        Ok(Self::new(world))
    }

    /// Parses a world-state JSON document.
    #[classmethod]
    fn from_json(_cls: &Bound<'_, PyType>, py: Python<'_>, text: String) -> PyResult<Self> {
        let world = detach(py, || WorldState::from_json(&text).map_err(|e| PyMiyabiError(e.into())))??;
        Ok(Self::new(world))
    }

    /// Builds a world state from plain Python objects (dicts, lists, numbers, strings), as
    /// returned by `to_dict`.
    #[classmethod]
    fn from_dict(_cls: &Bound<'_, PyType>, value: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Self::new(world_from_dict(value)?))
    }

    /// The document as plain Python objects.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &*self.inner)
    }

    /// The document as pretty JSON.
    fn to_json(&self, py: Python<'_>) -> String {
        let inner = Arc::clone(&self.inner);
        py.detach(move || inner.to_json())
    }

    /// Writes the document atomically.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let inner = Arc::clone(&self.inner);
        py.detach(move || inner.save(&path))
            .map_err(|e| PyMiyabiError(e.into()).into())
    }

    /// The schema version of the document.
    #[getter]
    fn schema_version(&self) -> u32 {
        self.inner.schema_version
    }

    /// The AWS account id, when known.
    #[getter]
    fn account_id(&self) -> Option<String> {
        self.inner.scope.account_id.clone()
    }

    /// The Regions scanned.
    #[getter]
    fn regions(&self) -> Vec<String> {
        self.inner.scope.regions.clone()
    }

    /// When the capture finished, ISO 8601 UTC.
    #[getter]
    fn captured_at(&self) -> String {
        self.inner.scope.captured_at.to_rfc3339()
    }

    /// True when some scans failed; `gaps` lists them.
    #[getter]
    fn is_partial(&self) -> bool {
        !self.inner.scope.completeness.is_complete()
    }

    /// The failed scans of a partial capture.
    #[getter]
    fn gaps<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match &self.inner.scope.completeness {
            Completeness::Partial { gaps } => to_py(py, gaps),
            Completeness::Complete => to_py(py, &Vec::<()>::new()),
        }
    }

    /// Number of resources (metric series not counted).
    #[getter]
    fn resource_count(&self) -> usize {
        self.inner.inventory.resource_count()
    }

    /// The inventory: resources and metric series, as dicts.
    #[getter]
    fn inventory<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner.inventory)
    }

    /// EC2 instances, as dicts.
    #[getter]
    fn instances<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner.inventory.instances)
    }

    /// S3 buckets, as dicts.
    #[getter]
    fn buckets<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner.inventory.buckets)
    }

    /// Every check result, passing and failing, as dicts.
    #[getter]
    fn findings<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner.assessment.findings)
    }

    /// Monthly cost per resource, as dicts.
    #[getter]
    fn costs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner.assessment.costs)
    }

    /// Monthly cost of the priced resources, USD.
    #[getter]
    fn monthly_cost(&self) -> f64 {
        self.inner.assessment.monthly_total_usd
    }

    /// Security score, 0–100.
    #[getter]
    fn security_score(&self) -> f64 {
        self.inner.assessment.security_score
    }

    /// vCPU-weighted mean CPU of running instances, %; `None` without data.
    #[getter]
    fn utilisation_percent(&self) -> Option<f64> {
        self.inner.assessment.utilisation_percent
    }

    /// The security findings as JSON text in a format security tools ingest: `"sarif"` (SARIF
    /// 2.1.0, the failing findings), `"ocsf"` (OCSF 1.5.0 Detection Findings) or `"asff"` (the
    /// AWS Security Finding Format). Raises `ValueError` for another format, and for ASFF when
    /// the capture has no account id.
    fn findings_as(&self, format: &str) -> PyResult<String> {
        use miyabi_aws::assessment::{asff, ocsf, sarif};
        let value = match format {
            "sarif" => sarif::sarif(&self.inner),
            "ocsf" => ocsf::ocsf(&self.inner),
            "asff" => asff::asff(&self.inner).ok_or_else(|| {
                PyValueError::new_err("ASFF findings carry the account id, which this world state does not have")
            })?,
            other => {
                return Err(PyValueError::new_err(format!(
                    "unknown findings format {other:?}: expected \"sarif\", \"ocsf\" or \"asff\""
                )))
            }
        };
        Ok(format!("{value:#}"))
    }

    fn __repr__(&self) -> String {
        let w = &*self.inner;
        format!(
            "WorldState(account_id={:?}, regions={:?}, resources={}, monthly_cost={:.2}, security_score={:.1}, partial={})",
            w.scope.account_id.as_deref().unwrap_or(""),
            w.scope.regions,
            w.inventory.resource_count(),
            w.assessment.monthly_total_usd,
            w.assessment.security_score,
            !w.scope.completeness.is_complete()
        )
    }
}

/// The same world state, assessed again (with the price catalog at `catalog`, or the built-in
/// one).
#[pyfunction(name = "assess")]
#[pyo3(signature = (world, catalog=None))]
fn assess_world(py: Python<'_>, world: PyWorldState, catalog: Option<PathBuf>) -> PyResult<PyWorldState> {
    let assessed = detach(py, move || -> PyMiyabiResult<WorldState> {
        let catalog = load_catalog(catalog)?;
        let mut world = world.into_inner();
        world.assessment = assess(&world.inventory, &catalog);
        Ok(world)
    })??;
    Ok(PyWorldState::new(assessed))
}

/// The JSON Schema of world-state documents, as JSON text.
#[pyfunction]
fn world_state_schema() -> String {
    WorldState::json_schema().to_string()
}
