//! Starts and stops the local AWS emulators on free ports of 127.0.0.1.
//!
//! The emulators live in their own Python environment (made by `scripts/bootstrap.sh`), found
//! through `MIYABI_TOOLS_VENV` or in the project's cache folder.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::seed::Endpoints;

/// Both emulators, killed on drop.
#[derive(Debug)]
pub struct LocalAws {
    /// moto (through `python/moto_compat.py`): EC2, S3, RDS, STS, SQS.
    pub moto_url: String,
    /// ministack: CloudWatch over Smithy RPC v2 CBOR.
    pub cloudwatch_url: String,
    children: Vec<Child>,
    log_dir: PathBuf,
}

/// The tools environment holding `moto_server` and `ministack`: `MIYABI_TOOLS_VENV`, else
/// `~/.cache/miyabi-aws/venv-tools` (where `scripts/env.sh` puts it).
pub fn tools_venv() -> PathBuf {
    if let Some(venv) = std::env::var_os("MIYABI_TOOLS_VENV") {
        return PathBuf::from(venv);
    }
    let cache = std::env::var_os("MIYABI_CACHE").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/miyabi-aws"),
        PathBuf::from,
    );
    cache.join("venv-tools")
}

/// Asks the kernel to kill the child when the thread that spawned it ends, so that emulators
/// never outlive a test process that was killed.
fn die_with_parent(cmd: &mut Command) -> &mut Command {
    // SAFETY: prctl is async-signal-safe and touches only the calling (child) process.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_listening(port: u16, child: &mut Child, name: &str, log: &Path) -> Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            bail!(
                "{name} exited with {status} before listening on {port}; log {}:\n{tail}",
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!(
        "{name} did not listen on 127.0.0.1:{port} within 60 s; log {}",
        log.display()
    )
}

impl LocalAws {
    /// Starts both emulators and waits until they listen.
    ///
    /// # Errors
    /// When the tools environment is missing or an emulator does not start.
    pub fn start() -> Result<Self> {
        let venv = tools_venv();
        let bin = venv.join("bin");
        if !bin.join("moto_server").exists() || !bin.join("ministack").exists() {
            bail!(
                "local AWS emulators not installed in {}: run scripts/bootstrap.sh (or set MIYABI_TOOLS_VENV)",
                venv.display()
            );
        }
        let log_dir = std::env::temp_dir().join(format!("miyabi-localaws-{}-{}", std::process::id(), free_port()?));
        std::fs::create_dir_all(&log_dir)?;
        let mut me = Self {
            moto_url: String::new(),
            cloudwatch_url: String::new(),
            children: Vec::new(),
            log_dir,
        };

        let moto_port = free_port()?;
        let moto_log = me.log_dir.join("moto.log");
        // moto_server behind a small WSGI fix for a fidelity gap (see python/moto_compat.py). The
        // script is compiled in, so that a build shared between checkouts never runs another
        // checkout's copy.
        let compat = me.log_dir.join("moto_compat.py");
        std::fs::write(&compat, include_str!("../python/moto_compat.py"))?;
        let mut moto = die_with_parent(&mut Command::new(bin.join("python")))
            .arg(&compat)
            .args(["-H", "127.0.0.1", "-p", &moto_port.to_string()])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&moto_log)?)
            .stderr(std::fs::File::create(me.log_dir.join("moto.err"))?)
            .spawn()
            .context("spawning moto_server")?;
        let moto_ready = wait_listening(moto_port, &mut moto, "moto_server", &moto_log);
        me.children.push(moto);
        moto_ready?;

        let cw_port = free_port()?;
        let cw_log = me.log_dir.join("ministack.log");
        // ministack behind a fix that scopes alarm evaluation to the alarm's own series, as
        // CloudWatch does (see python/ministack_compat.py); compiled in like moto's.
        let cw_compat = me.log_dir.join("ministack_compat.py");
        std::fs::write(&cw_compat, include_str!("../python/ministack_compat.py"))?;
        let mut cw = die_with_parent(&mut Command::new(bin.join("python")))
            .arg(&cw_compat)
            .env("BIND_HOST", "127.0.0.1")
            .env("GATEWAY_PORT", cw_port.to_string())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&cw_log)?)
            .stderr(std::fs::File::create(me.log_dir.join("ministack.err"))?)
            .spawn()
            .context("spawning ministack")?;
        let cw_ready = wait_listening(cw_port, &mut cw, "ministack", &cw_log);
        me.children.push(cw);
        cw_ready?;

        me.moto_url = format!("http://127.0.0.1:{moto_port}");
        me.cloudwatch_url = format!("http://127.0.0.1:{cw_port}");
        Ok(me)
    }

    /// The endpoints.
    #[must_use]
    pub fn endpoints(&self) -> Endpoints {
        Endpoints {
            moto: self.moto_url.clone(),
            cloudwatch: self.cloudwatch_url.clone(),
        }
    }

    /// One pair of emulators shared by every test of a process. They are started by a thread
    /// that lives as long as the process, and die with it.
    ///
    /// # Errors
    /// When the emulators cannot start (the message says how to install them).
    pub fn shared() -> Result<Endpoints> {
        static SHARED: OnceLock<Result<Endpoints, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                crate::init_test_env();
                let (tx, rx) = std::sync::mpsc::channel();
                let spawned =
                    std::thread::Builder::new()
                        .name("local-aws".into())
                        .spawn(move || match LocalAws::start() {
                            Ok(local) => {
                                let _ = tx.send(Ok(local.endpoints()));
                                loop {
                                    std::thread::park();
                                }
                            }
                            Err(e) => {
                                let _ = tx.send(Err(format!("{e:#}")));
                            }
                        });
                match spawned {
                    Ok(_) => rx.recv().unwrap_or_else(|_| Err("local-aws thread ended early".into())),
                    Err(e) => Err(e.to_string()),
                }
            })
            .clone()
            .map_err(anyhow::Error::msg)
    }

    /// The standard endpoint variables that route the SDK (and boto3) to the emulators.
    #[must_use]
    pub fn endpoint_env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ENDPOINT_URL".into(), self.moto_url.clone()),
            ("AWS_ENDPOINT_URL_CLOUDWATCH".into(), self.cloudwatch_url.clone()),
        ]
    }

    /// Stops both emulators.
    pub fn stop(&mut self) {
        for mut c in self.children.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for LocalAws {
    fn drop(&mut self) {
        self.stop();
    }
}
