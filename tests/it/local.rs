//! `crm-local` as a user runs it: the real binary on a real port, restarted over the same data.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

/// The binary `scripts/test.sh` builds next to this test executable.
fn crm_local_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let binary = dir.join("crm-local");
    assert!(
        binary.exists(),
        "{} is missing: run scripts/test.sh (it builds the binaries first)",
        binary.display()
    );
    binary
}

struct Running {
    child: Child,
    base: String,
    banner: Vec<String>,
}

/// Starts crm-local on a free port and waits for its "listening" line. `Running` reaps it.
#[allow(clippy::zombie_processes)]
fn start(data_dir: &Path, dev_key: Option<&str>) -> Running {
    let mut command = Command::new(crm_local_binary());
    command
        .env("CRM_DATA_DIR", data_dir)
        .env("PORT", "0")
        .env_remove("CRM_TABLE")
        .env_remove("CRM_DEV_API_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(key) = dev_key {
        command.env("CRM_DEV_API_KEY", key);
    }
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = Vec::new();
    loop {
        let line = lines
            .next()
            .expect("crm-local exited before listening")
            .unwrap();
        banner.push(line.clone());
        if let Some(rest) = line.split("listening on ").nth(1) {
            let base = rest.split_whitespace().next().unwrap().to_owned();
            // Keep draining stdout so the server never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return Running {
                child,
                base,
                banner,
            };
        }
    }
}

impl Drop for Running {
    /// A failed test must not leave a server behind.
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.child.kill().ok();
            self.child.wait().ok();
        }
    }
}

impl Running {
    /// Ctrl-C, as a person stops it; returns whether it exited cleanly.
    fn interrupt(&mut self) -> bool {
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
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    key: &str,
    body: Option<String>,
) -> (u16, Value) {
    let mut request = http.request(method, url).bearer_auth(key);
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
fn http_client() -> reqwest::Client {
    common::adapters::tls::client_builder().build().unwrap()
}

#[tokio::test]
async fn dev_key_data_and_shutdown_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let http = http_client();
    let key = "dev-key-for-scripts";

    let mut first = start(dir.path(), Some(key));
    assert!(
        first.banner.iter().any(|l| l.contains(key)),
        "{:?}",
        first.banner
    );
    let (status, client) = call(
        &http,
        reqwest::Method::POST,
        format!("{}/api/clients", first.base),
        key,
        Some(json!({"name": "Ada"}).to_string()),
    )
    .await;
    assert_eq!(status, 201, "{client}");
    assert!(first.interrupt(), "Ctrl-C stops crm-local with success");

    let mut second = start(dir.path(), None);
    assert!(
        !second.banner.iter().any(|l| l.contains(key)),
        "the key is shown only once"
    );
    let id = client["id"].as_str().unwrap();
    let (status, fetched) = call(
        &http,
        reqwest::Method::GET,
        format!("{}/api/clients/{id}", second.base),
        key,
        None,
    )
    .await;
    assert_eq!((status, &fetched), (200, &client));
    let (_, counts) = call(
        &http,
        reqwest::Method::GET,
        format!("{}/api/crm/sync-status", second.base),
        key,
        None,
    )
    .await;
    assert_eq!(counts["totalClients"], 1);
    assert!(second.interrupt());
}

#[tokio::test]
async fn first_start_prints_a_working_admin_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut running = start(dir.path(), None);
    let key = running
        .banner
        .iter()
        .find_map(|line| line.split("ADMIN API key: ").nth(1))
        .expect("the key is printed on first start")
        .trim()
        .to_owned();
    let http = http_client();
    let (status, created) = call(
        &http,
        reqwest::Method::POST,
        format!("{}/api/keys", running.base),
        &key,
        Some(json!({"name": "ci", "role": "MANAGER"}).to_string()),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert!(running.interrupt());
}

#[tokio::test]
async fn the_real_socket_answers_bad_requests_with_the_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let key = "socket-test-key";
    let mut running = start(dir.path(), Some(key));
    let http = http_client();
    let base = &running.base;
    let cases = [
        (
            reqwest::Method::POST,
            "/api/clients",
            Some("x".repeat(300 * 1024)),
            413,
        ),
        (
            reqwest::Method::POST,
            "/api/clients",
            Some("{\"name\":".to_owned()),
            400,
        ),
        (reqwest::Method::GET, "/api/nothing", None, 404),
        (reqwest::Method::PUT, "/api/crm/sync-status", None, 405),
    ];
    for (method, path, body, expected) in cases {
        let (status, reply) = call(&http, method, format!("{base}{path}"), key, body).await;
        assert_eq!(status, expected, "{path}: {reply}");
        assert_eq!(reply["success"], false);
    }
    let (status, reply) = call(
        &http,
        reqwest::Method::GET,
        format!("{base}/api/crm/sync-status"),
        "wrong",
        None,
    )
    .await;
    assert_eq!((status, reply["success"].clone()), (401, json!(false)));
    assert!(running.interrupt());
}

fn crm_admin(envs: &[(&str, &str)], args: &[&str]) -> (bool, String) {
    let binary = crm_local_binary().with_file_name("crm-admin");
    let output = Command::new(binary)
        .args(args)
        .env_remove("CRM_TABLE")
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

fn printed_key(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|line| line.split("(shown once): ").nth(1))
        .expect("crm-admin prints the key")
        .trim()
        .to_owned()
}

#[tokio::test]
async fn crm_admin_creates_a_tenant_on_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let (ok, stdout) = crm_admin(&[("CRM_DATA_DIR", data_dir)], &["create-tenant", "Acme"]);
    assert!(ok, "{stdout}");
    let key = printed_key(&stdout);

    let mut running = start(dir.path(), None);
    let (status, body) = call(
        &http_client(),
        reqwest::Method::GET,
        format!("{}/api/keys", running.base),
        &key,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"][0]["role"], "ADMIN");
    assert!(running.interrupt());

    let (ok, _) = crm_admin(&[("CRM_DATA_DIR", data_dir)], &["create-tenant", ""]);
    assert!(!ok, "an empty tenant name is refused");
    let (ok, _) = crm_admin(&[("CRM_DATA_DIR", data_dir)], &["no-such-command"]);
    assert!(!ok);
}

#[tokio::test]
async fn crm_admin_creates_tables_and_a_tenant_on_dynamodb() {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "needs moto: run scripts/test.sh"
    );
    let table = format!("crm-admin-{}", uuid::Uuid::new_v4());
    let envs = [("CRM_TABLE", table.as_str())];
    let (ok, stdout) = crm_admin(&envs, &["create-tables"]);
    assert!(ok, "{stdout}");
    let (ok, stdout) = crm_admin(&envs, &["create-tables"]);
    assert!(ok, "creating existing tables is a no-op: {stdout}");
    let (ok, stdout) = crm_admin(&envs, &["create-tenant", "Acme"]);
    assert!(ok, "{stdout}");
    let key = printed_key(&stdout);

    let store =
        common::adapters::dynamodb::DynamoStore::new(common::config::aws_clients().await.0, table);
    let found = common::ports::Store::find_api_key(&store, &common::domain::auth::hash_key(&key))
        .await
        .unwrap()
        .expect("the printed key authenticates");
    assert_eq!(found.role, common::domain::auth::Role::Admin);
}
