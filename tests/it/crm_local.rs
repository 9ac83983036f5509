//! `crm-local` as a person runs it: the real binary, on a real port, over either store (a
//! SQLite directory, or a DynamoDB table and SQS queue that `crm-admin create-tables` made on the
//! emulator the test command started), restarted over the same store.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::support::Backend;

/// The binaries `scripts/test.sh` builds next to this test executable.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let binary = dir.join(name);
    assert!(
        binary.exists(),
        "{} is missing: run scripts/test.sh (it builds the binaries first)",
        binary.display()
    );
    binary
}

/// Runs `crm-admin` with `envs` over an environment without store settings; returns whether
/// it succeeded and its stdout.
pub fn crm_admin(envs: &[(&str, &str)], args: &[&str]) -> (bool, String) {
    let output = Command::new(binary("crm-admin"))
        .args(args)
        .env_remove("CRM_TABLE")
        .env_remove("CRM_QUEUE_URL")
        .env_remove("CRM_DATA_DIR")
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// Where a crm-local keeps its data: the settings that select it, and the directory to remove
/// afterwards. Every store is new and empty, so tests run in parallel.
pub struct LocalStore {
    env: Vec<(String, String)>,
    dir: Option<tempfile::TempDir>,
}

impl LocalStore {
    pub fn new(backend: Backend) -> LocalStore {
        match backend {
            Backend::Sqlite => LocalStore::sqlite(),
            Backend::DynamoDb => LocalStore::dynamodb(),
        }
    }

    /// A new `CRM_DATA_DIR`.
    pub fn sqlite() -> LocalStore {
        let dir = tempfile::tempdir().unwrap();
        LocalStore {
            env: vec![("CRM_DATA_DIR".into(), dir.path().display().to_string())],
            dir: Some(dir),
        }
    }

    /// A new table and queue on the emulator, made as the README says: `crm-admin create-tables`,
    /// then `CRM_TABLE` and the `CRM_QUEUE_URL` it prints.
    pub fn dynamodb() -> LocalStore {
        assert!(
            std::env::var("AWS_ENDPOINT_URL").is_ok(),
            "crm-local on DynamoDB needs a local emulator: run scripts/test.sh, which starts moto \
             and sets AWS_ENDPOINT_URL"
        );
        let table = format!("crm-local-{}", uuid::Uuid::new_v4());
        let (ok, stdout) = crm_admin(&[("CRM_TABLE", &table)], &["create-tables"]);
        assert!(ok, "crm-admin create-tables failed: {stdout}");
        let queue_url = stdout
            .lines()
            .find_map(|line| line.strip_prefix("export CRM_QUEUE_URL="))
            .unwrap_or_else(|| panic!("crm-admin create-tables printed no queue URL: {stdout}"))
            .to_owned();
        LocalStore {
            env: vec![
                ("CRM_TABLE".into(), table),
                ("CRM_QUEUE_URL".into(), queue_url),
                // Not a `master.key` in the working directory's `.crm-data`.
                (
                    "CRM_MASTER_KEY".into(),
                    crate::support::TEST_MAIN_KEY.into(),
                ),
            ],
            dir: None,
        }
    }

    /// The value of one of the settings that select this store (`CRM_TABLE`, …).
    pub fn setting(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The directory of a SQLite store.
    pub fn data_dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(tempfile::TempDir::path)
    }

    /// Starts crm-local over this store with `envs` added, on a free port, and waits until it
    /// listens (off the async runtime, which keeps serving the test's receivers meanwhile).
    pub async fn start(&self, envs: &[(&str, &str)]) -> CrmLocal {
        let mut env = self.env.clone();
        env.extend(envs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        tokio::task::spawn_blocking(move || CrmLocal::start(&env))
            .await
            .unwrap()
    }
}

/// A running crm-local. Dropping it kills the process, so a failed test leaves none behind.
pub struct CrmLocal {
    child: Child,
    /// `http://127.0.0.1:PORT`, from its "listening on" line.
    pub base: String,
    /// What it printed up to and including the "listening on" line.
    pub banner: Vec<String>,
    /// What it printed since (its log), for failure messages.
    output: Arc<Mutex<Vec<String>>>,
}

impl CrmLocal {
    #[allow(clippy::zombie_processes)] // reaped by Drop
    fn start(env: &[(String, String)]) -> CrmLocal {
        let mut command = Command::new(binary("crm-local"));
        command
            .env("PORT", "0")
            .env_remove("CRM_TABLE")
            .env_remove("CRM_QUEUE_URL")
            .env_remove("CRM_DATA_DIR")
            .env_remove("CRM_DEV_API_KEY")
            .env_remove("CRM_MASTER_KEY")
            .env_remove("CRM_KMS_KEY_ID")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = command.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut banner = Vec::new();
        loop {
            let Some(line) = lines.next() else {
                panic!("crm-local exited before listening; it printed: {banner:#?}");
            };
            let line = line.unwrap();
            banner.push(line.clone());
            if let Some(rest) = line.split("listening on ").nth(1) {
                let base = rest.split_whitespace().next().unwrap().to_owned();
                let output = Arc::new(Mutex::new(Vec::new()));
                let sink = Arc::clone(&output);
                // Keep reading, so the server never blocks on a full pipe.
                std::thread::spawn(move || {
                    for line in lines.map_while(Result::ok) {
                        sink.lock().unwrap().push(line);
                    }
                });
                return CrmLocal {
                    child,
                    base,
                    banner,
                    output,
                };
            }
        }
    }

    /// Its process id, to read its memory from `/proc`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no shutdown, nothing flushed, as a crash.
    pub fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Ctrl-C, as a person stops it; returns whether it exited cleanly within 5 s.
    pub fn interrupt(&mut self) -> bool {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-INT", &pid]).status().unwrap();
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The last lines it logged, for a failure message.
    pub fn log_tail(&self) -> String {
        let output = self.output.lock().unwrap();
        let start = output.len().saturating_sub(30);
        output[start..].join("\n")
    }

    /// Calls the API with `key`; returns the status and the JSON body (`Null` when empty).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        call(
            method,
            format!("{}{path}", self.base),
            key,
            body.map(Value::to_string),
        )
        .await
    }

    pub async fn get(&self, path: &str, key: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, key, None).await
    }

    pub async fn post(&self, path: &str, key: &str, body: &Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, key, Some(body))
            .await
    }
}

impl Drop for CrmLocal {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.child.kill().ok();
            self.child.wait().ok();
        }
    }
}

/// One HTTP call with a bearer key; returns the status and the JSON body (`Null` when empty).
pub async fn call(
    method: reqwest::Method,
    url: String,
    key: &str,
    body: Option<String>,
) -> (u16, Value) {
    let mut request = http_client().request(method, url).bearer_auth(key);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let json = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (status, json)
}

/// A client for calls to crm-local, with the process's TLS provider (common's only builder).
pub fn http_client() -> reqwest::Client {
    common::adapters::tls::client_builder().build().unwrap()
}
