//! Secrets never reach an output. The CLI runs a whole cycle, and the legacy Python discovery
//! once, with credentials made up for this run, debug logging on, against an estate whose
//! instance holds a secret in its user data and one in a tag; then every file the runs wrote
//! (world states, reports, the security formats, the HTML page, the IaC, `knowledge.redb`) and
//! everything they printed is searched for each of the five.

use std::path::{Path, PathBuf};
use std::process::Command;

use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag, TagSpecification};
use miyabi_aws::world::{UserDataScan, WorldState};
use miyabi_aws_testkit::local_aws::LocalAws;

use super::support::tmp_dir;

const REGION: &str = "us-gov-east-1";

/// `n` characters of `alphabet`, from the system's randomness.
fn random(n: usize, alphabet: &[u8]) -> String {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("system randomness");
    bytes
        .iter()
        .map(|b| char::from(alphabet[usize::from(*b) % alphabet.len()]))
        .collect()
}

const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

struct Secrets {
    access_key: String,
    secret_key: String,
    session_token: String,
    user_data: String,
    tag: String,
}

impl Secrets {
    fn new() -> Self {
        Self {
            access_key: format!("AKIA{}", random(16, UPPER)),
            secret_key: random(40, BASE64),
            session_token: random(160, BASE64),
            user_data: random(24, BASE64),
            tag: random(20, BASE64),
        }
    }

    fn all(&self) -> [(&'static str, &str); 5] {
        [
            ("access key id", &self.access_key),
            ("secret access key", &self.secret_key),
            ("session token", &self.session_token),
            ("user-data secret", &self.user_data),
            ("tag secret", &self.tag),
        ]
    }

    /// The standard credential variables, the emulators' endpoints, and debug logging
    /// (`MIYABI_SECRETS_TEST_LOG=trace` searches the most verbose logs instead).
    fn env(&self, cmd: &mut Command, endpoints: &miyabi_aws_testkit::seed::Endpoints) {
        cmd.env("AWS_ACCESS_KEY_ID", &self.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret_key)
            .env("AWS_SESSION_TOKEN", &self.session_token)
            .env("AWS_ENDPOINT_URL", &endpoints.moto)
            .env("AWS_ENDPOINT_URL_CLOUDWATCH", &endpoints.cloudwatch)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env(
                "MIYABI_LOG",
                std::env::var("MIYABI_SECRETS_TEST_LOG").unwrap_or_else(|_| "debug".into()),
            )
            .env_remove("AWS_PROFILE");
    }
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("readable").map_while(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn run(mut cmd: Command, log: &Path) {
    let out = cmd.output().expect("miyabi-aws runs");
    let mut text = out.stdout.clone();
    text.extend_from_slice(&out.stderr);
    std::fs::write(log, &text).expect("log written");
    assert!(
        out.status.code().is_some_and(|c| c == 0 || c == 3),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&text)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credential_or_secret_reaches_any_output() {
    let endpoints = LocalAws::shared().expect("emulators");
    let secrets = Secrets::new();
    // The estate: one instance with a secret in its user data and one in a tag, created with the
    // same made-up credentials (the emulators accept any).
    let creds = aws_sdk_ec2::config::Credentials::new(
        &secrets.access_key,
        &secrets.secret_key,
        Some(secrets.session_token.clone()),
        None,
        "secrets-test",
    );
    let config = aws_sdk_ec2::Config::builder()
        .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
        .region(aws_sdk_ec2::config::Region::new(REGION))
        .credentials_provider(creds)
        .endpoint_url(&endpoints.moto)
        .build();
    let ec2 = aws_sdk_ec2::Client::from_conf(config);
    let script = format!(
        "#!/bin/bash\nyum install -y httpd\nexport DB_PASSWORD='{}'\n",
        secrets.user_data
    );
    let launched = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .user_data(base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            &script,
        ))
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(Tag::builder().key("Name").value("web-secrets").build())
                .tags(Tag::builder().key("ApiToken").value(&secrets.tag).build())
                .build(),
        )
        .send()
        .await
        .expect("RunInstances");
    let id = launched.instances()[0].instance_id().expect("an id").to_owned();

    let out = tmp_dir("secrets");
    let bin = env!("CARGO_BIN_EXE_miyabi-aws");
    let mut cycle = Command::new(bin);
    cycle.args([
        "cycle",
        "--region",
        REGION,
        "--apply",
        "--approve",
        "all",
        "--max-iterations",
        "2",
    ]);
    cycle.args([
        "--output-format",
        "json,markdown,html,sarif,ocsf,asff",
        "--quiet",
        "--out",
    ]);
    cycle.arg(out.join("cycle"));
    secrets.env(&mut cycle, &endpoints);
    run(cycle, &out.join("cycle.log"));
    let mut legacy = Command::new(bin);
    legacy.args(["discover", "--discovery", "python", "--region", REGION, "--out"]);
    legacy.arg(out.join("legacy"));
    legacy.env("MIYABI_LEGACY_PATH", super::support::repo_root().join("python"));
    secrets.env(&mut legacy, &endpoints);
    run(legacy, &out.join("legacy.log"));

    // The secrets were there to be found: the user-data secret is named by kind and line, and
    // the tag is kept with its value redacted.
    for world in ["cycle/world_state_0.json", "legacy/world_state_0.json"] {
        let world = WorldState::load(out.join(world)).expect("a world state");
        let instance = world
            .inventory
            .instances
            .iter()
            .find(|i| i.id == id)
            .expect("the instance");
        let Some(UserDataScan::Scanned { secrets: hits }) = &instance.user_data else {
            panic!("the user data was scanned: {:?}", instance.user_data);
        };
        assert_eq!(hits.iter().map(|h| h.line).collect::<Vec<_>>(), [3]);
        assert_eq!(instance.tags.get("ApiToken").map(String::as_str), Some("[redacted]"));
        let finding = world
            .assessment
            .findings
            .iter()
            .find(|f| f.check_id == "miyabi_ec2_instance_secrets_user_data" && f.resource_id == id)
            .expect("the user-data check ran");
        assert!(
            finding.message.contains("Secret Keyword on line 3"),
            "{}",
            finding.message
        );
    }
    let logs = std::fs::read_to_string(out.join("cycle.log")).unwrap();
    assert!(logs.contains("DEBUG"), "debug logging was on");
    // The caps on the SDK's credential-bearing events only lower: by default nothing logs below
    // info.
    let mut quiet = Command::new(bin);
    quiet
        .args(["discover", "--region", REGION, "--out"])
        .arg(out.join("default-log"));
    secrets.env(&mut quiet, &endpoints);
    quiet.env_remove("MIYABI_LOG");
    run(quiet, &out.join("default.log"));
    let default_log = std::fs::read_to_string(out.join("default.log")).unwrap();
    assert!(
        !default_log.contains("DEBUG") && !default_log.contains("TRACE"),
        "{default_log}"
    );

    let searched = files(&out);
    assert!(
        searched.iter().any(|p| p.ends_with("knowledge.redb")) && searched.iter().any(|p| p.ends_with("report.html")),
        "{searched:?}"
    );
    for path in &searched {
        let bytes = std::fs::read(path).expect("readable");
        for (what, secret) in secrets.all() {
            let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
            assert!(!found, "the {what} is in {}", path.display());
        }
    }
}
