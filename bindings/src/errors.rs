//! One exception hierarchy rooted at `miyabi_aws.MiyabiError`, and the only place Rust errors
//! become Python exceptions.

use miyabi_aws::Error;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(miyabi_aws, MiyabiError, PyException, "Base of every miyabi_aws error.");
create_exception!(
    miyabi_aws,
    AwsError,
    MiyabiError,
    "An AWS call failed: AWS said no, or could not be asked."
);
create_exception!(
    miyabi_aws,
    WorldStateError,
    MiyabiError,
    "A world-state document could not be read or parsed."
);
create_exception!(
    miyabi_aws,
    CatalogError,
    MiyabiError,
    "The price catalog could not be loaded or lacks an item."
);
create_exception!(
    miyabi_aws,
    BridgeError,
    MiyabiError,
    "A legacy Python phase could not be run or answered wrongly."
);
create_exception!(miyabi_aws, ConfigError, MiyabiError, "Invalid configuration.");
create_exception!(
    miyabi_aws,
    PhaseInputError,
    MiyabiError,
    "A phase lacks an input an earlier phase should produce."
);
create_exception!(
    miyabi_aws,
    ArtefactError,
    MiyabiError,
    "A value does not have the shape of the artefact it is given as."
);
create_exception!(
    miyabi_aws,
    StorageError,
    MiyabiError,
    "A report or world-state file could not be written."
);

/// The context every `MiyabiError` carries, `None` where it does not apply: which AWS call
/// (`service`, `operation`, `region`, `account`), AWS's error `code`, and whether trying again
/// may succeed (`retryable`).
const CONTEXT: [&str; 6] = ["service", "operation", "region", "account", "code", "retryable"];

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let base = py.get_type::<MiyabiError>();
    for name in CONTEXT {
        base.setattr(name, py.None())?;
    }
    base.setattr("retryable", false)?;
    m.add("MiyabiError", py.get_type::<MiyabiError>())?;
    m.add("AwsError", py.get_type::<AwsError>())?;
    m.add("WorldStateError", py.get_type::<WorldStateError>())?;
    m.add("CatalogError", py.get_type::<CatalogError>())?;
    m.add("BridgeError", py.get_type::<BridgeError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("PhaseInputError", py.get_type::<PhaseInputError>())?;
    m.add("StorageError", py.get_type::<StorageError>())?;
    m.add("ArtefactError", py.get_type::<ArtefactError>())?;
    Ok(())
}

/// A core error on its way to Python.
pub(crate) struct PyMiyabiError(pub Error);

impl From<Error> for PyMiyabiError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

/// What went wrong where, as the exception's attributes.
#[derive(Default)]
struct Context {
    service: Option<String>,
    operation: Option<String>,
    region: Option<String>,
    account: Option<String>,
    code: Option<String>,
    retryable: bool,
}

impl Context {
    fn of(error: &Error) -> Option<Self> {
        match error {
            Error::Aws(e) => Some(Self {
                service: Some(e.service.to_owned()),
                operation: Some(e.operation.to_owned()),
                region: Some(e.region.clone()),
                account: e.account.clone(),
                code: e.code().map(str::to_owned),
                retryable: e.is_retryable(),
            }),
            Error::Bridge(miyabi_aws::bridge::BridgeError::Remote { error, .. }) => {
                let data = error.data.clone().unwrap_or_default();
                Some(Self {
                    service: data.service,
                    operation: data.operation,
                    region: data.region,
                    account: None,
                    code: data.aws_error_code,
                    retryable: data.retryable,
                })
            }
            _ => None,
        }
    }

    fn attach(self, err: &PyErr) {
        Python::attach(|py| {
            let value = err.value(py);
            let set = |name: &str, v: Option<String>| {
                // Setting an attribute on a fresh exception instance does not fail.
                let _ = value.setattr(name, v);
            };
            set("service", self.service);
            set("operation", self.operation);
            set("region", self.region);
            set("account", self.account);
            set("code", self.code);
            let _ = value.setattr("retryable", self.retryable);
        });
    }
}

impl From<PyMiyabiError> for PyErr {
    fn from(PyMiyabiError(error): PyMiyabiError) -> Self {
        let context = Context::of(&error);
        let err = exception(error);
        if let Some(context) = context {
            context.attach(&err);
        }
        err
    }
}

/// The exception of each error's class, with its message.
fn exception(error: Error) -> PyErr {
    let message = error.to_string();
    match error {
        Error::Aws(_) => AwsError::new_err(message),
        Error::Io { .. }
        | Error::Knowledge(_)
        | Error::WorldState(miyabi_aws::world::WorldStateError::Write { .. }) => StorageError::new_err(message),
        Error::WorldState(_) => WorldStateError::new_err(message),
        Error::Catalog(_) => CatalogError::new_err(message),
        Error::Bridge(_) => BridgeError::new_err(message),
        Error::Config(_) => ConfigError::new_err(message),
        Error::MissingInput(_) | Error::PlanFile { .. } => PhaseInputError::new_err(message),
        // A Python phase's own exception comes back exactly as it was raised.
        Error::Foreign { payload, .. } => match payload.0.downcast_ref::<PyErr>() {
            Some(original) => Python::attach(|py| original.clone_ref(py)),
            None => MiyabiError::new_err(message),
        },
        _ => MiyabiError::new_err(message),
    }
}

/// Shorthand for results crossing into Python.
pub(crate) type PyMiyabiResult<T> = Result<T, PyMiyabiError>;

/// A Rust panic as a `MiyabiError` rather than `pyo3_runtime.PanicException`: an engine bug,
/// reported with its message.
pub(crate) fn panicked(payload: &(dyn std::any::Any + Send)) -> PyErr {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned());
    MiyabiError::new_err(format!(
        "internal error: the engine panicked ({message}); this is a bug in miyabi-aws, please report it"
    ))
}
