//! The Rust phases, reachable from Python: called directly (`discover`, `discover_async`) or
//! placed in a `Cycle` as objects (`Discovery`).

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use miyabi_aws::aws::AwsOptions;
use miyabi_aws::phases::discovery::{Discovery, DiscoveryConfig};
use miyabi_aws::{Error, Phase};
use pyo3::prelude::*;

use crate::errors::PyMiyabiError;
use crate::runtime::block_on;
use crate::world::{load_catalog, PyWorldState};

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyDiscovery>()?;
    m.add_function(wrap_pyfunction!(discover, m)?)?;
    m.add_function(wrap_pyfunction!(discover_async, m)?)?;
    Ok(())
}

/// Reads `until` as a `datetime` (anything with `timestamp()`) or Unix seconds.
fn parse_until(until: Option<&Bound<'_, PyAny>>) -> PyResult<Option<DateTime<Utc>>> {
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
    endpoint_url: Option<String>,
    profile: Option<String>,
    lookback_hours: u32,
    until: Option<&Bound<'_, PyAny>>,
) -> PyResult<DiscoveryConfig> {
    Ok(DiscoveryConfig {
        regions: regions.unwrap_or_default(),
        aws: AwsOptions {
            profile,
            endpoint_url,
            ..AwsOptions::default()
        },
        lookback_hours,
        until: parse_until(until)?,
        ..DiscoveryConfig::default()
    })
}

/// θ1 in Rust: scans the estate and returns its assessed world state. A capture with failed
/// scans is returned marked partial (`is_partial`, `gaps`); auth errors raise `AwsError`.
#[pyfunction]
#[pyo3(signature = (regions=None, *, endpoint_url=None, profile=None, lookback_hours=336, until=None, catalog=None))]
fn discover(
    py: Python<'_>,
    regions: Option<Vec<String>>,
    endpoint_url: Option<String>,
    profile: Option<String>,
    lookback_hours: u32,
    until: Option<&Bound<'_, PyAny>>,
    catalog: Option<PathBuf>,
) -> PyResult<PyWorldState> {
    let discovery = Discovery::new(config(regions, endpoint_url, profile, lookback_hours, until)?);
    let catalog = load_catalog(catalog)?;
    block_on(py, async move {
        let out = discovery.discover(&catalog).await.map_err(PyMiyabiError)?;
        Ok(PyWorldState::new(out.world))
    })
}

/// `discover` as a coroutine on the shared tokio runtime.
#[pyfunction]
#[pyo3(signature = (regions=None, *, endpoint_url=None, profile=None, lookback_hours=336, until=None, catalog=None))]
fn discover_async<'py>(
    py: Python<'py>,
    regions: Option<Vec<String>>,
    endpoint_url: Option<String>,
    profile: Option<String>,
    lookback_hours: u32,
    until: Option<&Bound<'py, PyAny>>,
    catalog: Option<PathBuf>,
) -> PyResult<Bound<'py, PyAny>> {
    let discovery = Discovery::new(config(regions, endpoint_url, profile, lookback_hours, until)?);
    let catalog = load_catalog(catalog)?;
    pyo3_async_runtimes::tokio::future_into_py(py, async move {
        let out = discovery.discover(&catalog).await.map_err(PyMiyabiError)?;
        Ok(PyWorldState::new(out.world))
    })
}

/// θ1 in Rust as a phase object for `Cycle`.
#[pyclass(name = "Discovery", module = "miyabi_aws._native", frozen)]
pub(crate) struct PyDiscovery {
    pub(crate) phase: Arc<dyn Phase>,
}

#[pymethods]
impl PyDiscovery {
    #[new]
    #[pyo3(signature = (regions=None, *, endpoint_url=None, profile=None, lookback_hours=336, until=None))]
    fn new(
        regions: Option<Vec<String>>,
        endpoint_url: Option<String>,
        profile: Option<String>,
        lookback_hours: u32,
        until: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let discovery = Discovery::new(config(regions, endpoint_url, profile, lookback_hours, until)?);
        Ok(Self {
            phase: Arc::new(discovery),
        })
    }

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

    fn __repr__(&self) -> String {
        format!("Discovery(name={:?})", self.phase.name())
    }
}
