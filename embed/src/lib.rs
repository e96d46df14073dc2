//! # miyabi-aws-embed
//!
//! The legacy Python discovery of [`miyabi_aws`] inside an embedded interpreter: an
//! [`InProcessTransport`] for [`miyabi_aws::bridge::PythonBridge`], the in-process counterpart
//! of the subprocess (JSON-RPC) transport.
//!
//! The module is imported and its `discover(region, profile, lookback_hours, until,
//! endpoint_url=...)` called;
//! the returned dicts and lists are read straight into the Rust model by `pythonize`, with no
//! JSON text in between. Each Region runs on a blocking thread that holds the interpreter only
//! while Python runs and its objects are converted; the assessment and everything else run
//! with the interpreter released.
//!
//! It is a crate of its own so that the core never links `libpython`. Binaries that depend on
//! it embed the interpreter the build was configured with (`PYO3_PYTHON`, or `python3` on
//! `PATH`); [`embedded_interpreter`] says which one was loaded.
#![forbid(unsafe_code)]
#![warn(missing_docs, clippy::pedantic)]
#![allow(clippy::result_large_err)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use async_trait::async_trait;
use pyo3::exceptions::PyModuleNotFoundError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use miyabi_aws::bridge::{BridgeError, PhaseConfig, PhaseTransport, RegionCapture, RemoteError, RemoteErrorData};
use miyabi_aws::world::Inventory;

const TRANSPORT: &str = "in-process";
/// JSON-RPC's internal-error code, for exceptions the classifier cannot explain.
const INTERNAL_ERROR: i64 = -32603;

/// Calls a Python discovery function in this process.
#[derive(Debug, Clone)]
pub struct InProcessTransport {
    module: String,
    function: String,
    classifier: String,
    python_path: Vec<PathBuf>,
}

impl InProcessTransport {
    /// `miyabi_legacy.discovery.discover`, with failures classified by `miyabi_legacy.errors`.
    #[must_use]
    pub fn legacy_discovery() -> Self {
        Self {
            module: "miyabi_legacy.discovery".into(),
            function: "discover".into(),
            classifier: "miyabi_legacy.errors".into(),
            python_path: Vec::new(),
        }
    }

    /// Calls `module.function` instead.
    #[must_use]
    pub fn with_function(mut self, module: impl Into<String>, function: impl Into<String>) -> Self {
        self.module = module.into();
        self.function = function.into();
        self
    }

    /// Puts `dirs` in front of `sys.path` before importing.
    #[must_use]
    pub fn with_python_path(mut self, dirs: impl IntoIterator<Item = PathBuf>) -> Self {
        self.python_path.extend(dirs);
        self
    }

    fn script(&self) -> String {
        format!("{}.{}", self.module, self.function)
    }

    fn call(&self, py: Python<'_>, config: &PhaseConfig) -> Result<RegionCapture, BridgeError> {
        prepare_sys_path(py, &self.python_path).map_err(|e| self.remote(py, &e))?;
        let module = py.import(self.module.as_str()).map_err(|e| {
            if e.is_instance_of::<PyModuleNotFoundError>(py) {
                BridgeError::ScriptMissing {
                    transport: TRANSPORT,
                    script: self.module.clone(),
                    detail: e.to_string(),
                }
            } else {
                self.remote(py, &e)
            }
        })?;
        let returned = module
            .getattr(self.function.as_str())
            .and_then(|f| {
                let kwargs = PyDict::new(py);
                kwargs.set_item("endpoint_url", config.endpoint_url.as_deref())?;
                f.call(
                    (
                        config.aws_region.as_str(),
                        config.profile.as_deref(),
                        config.lookback_hours,
                        config.until,
                    ),
                    Some(&kwargs),
                )
            })
            .map_err(|e| self.remote(py, &e))?;
        let shape = |path: &str, message: String| BridgeError::Shape {
            transport: TRANSPORT,
            script: self.script(),
            path: path.to_owned(),
            message,
        };
        let pair = returned
            .cast::<PyTuple>()
            .map_err(|e| shape("", format!("expected (inventory, account_id), got {e}")))?;
        if pair.len() != 2 {
            return Err(shape(
                "",
                format!("expected (inventory, account_id), got {} items", pair.len()),
            ));
        }
        let account_id: Option<String> = pair
            .get_item(1)
            .and_then(|a| a.extract())
            .map_err(|e| shape("[1]", e.to_string()))?;
        let inventory = pair.get_item(0).map_err(|e| shape("[0]", e.to_string()))?;
        let mut de = pythonize::Depythonizer::from_object(&inventory);
        let inventory: Inventory = serde_path_to_error::deserialize(&mut de)
            .map_err(|e| shape(&format!("[0].{}", e.path()), e.inner().to_string()))?;
        inventory
            .validate()
            .map_err(|v| shape(&format!("[0].{}", v.path), v.message))?;
        Ok(RegionCapture {
            account_id,
            region: config.aws_region.clone(),
            inventory,
        })
    }

    /// The exception as the JSON-RPC server would report it, through the same classifier.
    fn remote(&self, py: Python<'_>, err: &PyErr) -> BridgeError {
        let classified = py
            .import(self.classifier.as_str())
            .and_then(|m| m.getattr("classify"))
            .and_then(|classify| classify.call1((err.value(py),)))
            .and_then(|r| r.extract::<(i64, String, Bound<'_, PyAny>)>());
        let error = match classified {
            Ok((code, message, data)) => {
                let mut data: RemoteErrorData = pythonize::depythonize(&data).unwrap_or_default();
                if code == INTERNAL_ERROR {
                    data.traceback = traceback(py, err);
                }
                RemoteError {
                    code,
                    message,
                    data: Some(data),
                }
            }
            Err(_) => RemoteError {
                code: INTERNAL_ERROR,
                message: err.to_string(),
                data: Some(RemoteErrorData {
                    exception: err.get_type(py).name().ok().map(|n| n.to_string()),
                    traceback: traceback(py, err),
                    ..RemoteErrorData::default()
                }),
            },
        };
        BridgeError::Remote {
            transport: TRANSPORT,
            script: self.script(),
            error,
        }
    }
}

fn traceback(py: Python<'_>, err: &PyErr) -> Option<String> {
    err.traceback(py).and_then(|tb| tb.format().ok())
}

/// Adds `dirs` to `sys.path`, and once per process the site-packages of the virtualenv named
/// by `VIRTUAL_ENV`: an embedded interpreter does not look for a virtualenv by itself.
fn prepare_sys_path(py: Python<'_>, dirs: &[PathBuf]) -> PyResult<()> {
    static VENV: OnceLock<()> = OnceLock::new();
    if VENV.get().is_none() {
        if let Some(venv) = std::env::var_os("VIRTUAL_ENV") {
            let version = py.version_info();
            let site = Path::new(&venv)
                .join("lib")
                .join(format!("python{}.{}", version.major, version.minor))
                .join("site-packages");
            py.import("site")?.call_method1("addsitedir", (site,))?;
        }
        let _ = VENV.set(());
    }
    let sys_path = py.import("sys")?.getattr("path")?.cast_into::<PyList>()?;
    for dir in dirs.iter().rev() {
        let dir = dir.to_string_lossy();
        if !sys_path.contains(dir.as_ref())? {
            sys_path.insert(0, dir.as_ref())?;
        }
    }
    Ok(())
}

#[async_trait]
impl PhaseTransport for InProcessTransport {
    fn kind(&self) -> &'static str {
        TRANSPORT
    }

    async fn discover_region(&self, config: &PhaseConfig) -> Result<RegionCapture, BridgeError> {
        let this = self.clone();
        let config = config.clone();
        tokio::task::spawn_blocking(move || Python::attach(|py| this.call(py, &config)))
            .await
            .map_err(|e| BridgeError::Remote {
                transport: TRANSPORT,
                script: self.script(),
                error: RemoteError {
                    code: INTERNAL_ERROR,
                    message: format!("the bridge thread failed: {e}"),
                    data: None,
                },
            })?
    }
}

/// Which interpreter this process embeds, and which one the build was configured with.
#[derive(Debug, Clone)]
pub struct EmbeddedInterpreter {
    /// `sys.version` of the embedded interpreter.
    pub version: String,
    /// `sys.prefix` of the embedded interpreter.
    pub prefix: String,
    /// The `libpython` file mapped into this process, read from `/proc/self/maps`.
    pub libpython: Option<PathBuf>,
    /// The interpreter the build used (`PYO3_PYTHON` or the one on PATH).
    pub build_python: &'static str,
    /// That interpreter's `LIBDIR`, which the build put in the rpath.
    pub build_libdir: &'static str,
}

/// Reports the embedded interpreter, starting it if needed.
///
/// # Errors
/// A [`BridgeError::Remote`] if Python cannot answer.
pub fn embedded_interpreter() -> Result<EmbeddedInterpreter, BridgeError> {
    let (version, prefix) = Python::attach(|py| -> PyResult<(String, String)> {
        let sys = py.import("sys")?;
        Ok((sys.getattr("version")?.extract()?, sys.getattr("prefix")?.extract()?))
    })
    .map_err(|e| BridgeError::Remote {
        transport: TRANSPORT,
        script: "sys".into(),
        error: RemoteError {
            code: INTERNAL_ERROR,
            message: e.to_string(),
            data: None,
        },
    })?;
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let libpython = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.contains("libpython"))
        .map(PathBuf::from);
    Ok(EmbeddedInterpreter {
        version,
        prefix,
        libpython,
        build_python: env!("MIYABI_BUILD_PYTHON"),
        build_libdir: env!("MIYABI_BUILD_PYTHON_LIBDIR"),
    })
}
