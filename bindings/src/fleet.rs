//! The fleet from Python: send a cycle request to the workers' queue, read its result.

use miyabi_aws::fleet::{client, CycleRequest};
use miyabi_aws::Error;
use pyo3::prelude::*;

use crate::errors::PyMiyabiError;
use crate::phases::session;
use crate::runtime::block_on;

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(submit_request, m)?)?;
    m.add_function(wrap_pyfunction!(request_result, m)?)?;
    Ok(())
}

/// Sends `request` (a dict of `schema/cycle_request.schema.json`) to the queue at `queue_url`
/// in `region`; returns the message id. A request a worker would not run raises `ConfigError`
/// and nothing is sent.
#[pyfunction]
#[pyo3(signature = (queue_url, request, *, region, endpoint_url=None, profile=None))]
fn submit_request(
    py: Python<'_>,
    queue_url: String,
    request: &Bound<'_, PyAny>,
    region: String,
    endpoint_url: Option<String>,
    profile: Option<String>,
) -> PyResult<String> {
    let mut de = pythonize::Depythonizer::from_object(request);
    let request: CycleRequest = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        PyMiyabiError(Error::Config(format!(
            "not a cycle request: at {}: {}",
            e.path(),
            e.inner()
        )))
    })?;
    let aws = session(profile, endpoint_url);
    block_on(py, async move {
        Ok(client::submit(&aws, &region, &queue_url, &request)
            .await
            .map_err(PyMiyabiError)?)
    })
}

/// The result (`result.json` as a dict) of request `request_id` of `tenant_id` in `bucket`, or
/// `None` while the request has none.
#[pyfunction]
#[pyo3(signature = (bucket, tenant_id, request_id, *, region, endpoint_url=None, profile=None))]
fn request_result(
    py: Python<'_>,
    bucket: String,
    tenant_id: String,
    request_id: String,
    region: String,
    endpoint_url: Option<String>,
    profile: Option<String>,
) -> PyResult<Option<Bound<'_, PyAny>>> {
    let aws = session(profile, endpoint_url);
    let result = block_on(py, async move {
        Ok(client::result(&aws, &region, &bucket, &tenant_id, &request_id)
            .await
            .map_err(PyMiyabiError)?)
    })?;
    result
        .map(|r| pythonize::pythonize(py, &r).map_err(PyErr::from))
        .transpose()
}
