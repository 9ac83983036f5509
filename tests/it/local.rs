//! `crm-local` and `crm-admin` as a user runs them: the real binaries, on a real port, restarted
//! over the same data. Delivery end to end through the binary, on both stores: `local_delivery`.

use serde_json::json;

use crate::crm_local::{crm_admin, LocalStore};

#[tokio::test]
async fn dev_key_data_and_shutdown_survive_a_restart() {
    let store = LocalStore::sqlite();
    let key = "dev-key-for-scripts";

    let mut first = store.start(&[("CRM_DEV_API_KEY", key)]).await;
    assert!(
        first.banner.iter().any(|l| l.contains(key)),
        "{:?}",
        first.banner
    );
    let (status, client) = first
        .post("/api/clients", key, &json!({"name": "Ada"}))
        .await;
    assert_eq!(status, 201, "{client}");
    assert!(first.interrupt(), "Ctrl-C stops crm-local with success");

    let mut second = store.start(&[]).await;
    assert!(
        !second.banner.iter().any(|l| l.contains(key)),
        "the key is shown only once"
    );
    let id = client["id"].as_str().unwrap();
    let (status, fetched) = second.get(&format!("/api/clients/{id}"), key).await;
    assert_eq!((status, &fetched), (200, &client));
    let (_, counts) = second.get("/api/crm/sync-status", key).await;
    assert_eq!(counts["totalClients"], 1);
    assert!(second.interrupt());
}

#[tokio::test]
async fn first_start_prints_a_working_admin_key() {
    let store = LocalStore::sqlite();
    let mut running = store.start(&[]).await;
    let key = running
        .banner
        .iter()
        .find_map(|line| line.split("ADMIN API key: ").nth(1))
        .expect("the key is printed on first start")
        .trim()
        .to_owned();
    let (status, created) = running
        .post("/api/keys", &key, &json!({"name": "ci", "role": "MANAGER"}))
        .await;
    assert_eq!(status, 201, "{created}");
    assert!(running.interrupt());
}

#[tokio::test]
async fn the_real_socket_answers_bad_requests_with_the_envelope() {
    let store = LocalStore::sqlite();
    let key = "socket-test-key";
    let mut running = store.start(&[("CRM_DEV_API_KEY", key)]).await;
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
        let url = format!("{}{path}", running.base);
        let (status, reply) = crate::crm_local::call(method, url, key, body).await;
        assert_eq!(status, expected, "{path}: {reply}");
        assert_eq!(reply["success"], false);
    }
    let (status, reply) = running.get("/api/crm/sync-status", "wrong").await;
    assert_eq!((status, reply["success"].clone()), (401, json!(false)));
    assert!(running.interrupt());
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
    let store = LocalStore::sqlite();
    let data_dir = store.data_dir().unwrap().to_str().unwrap().to_owned();
    let (ok, stdout) = crm_admin(&[("CRM_DATA_DIR", &data_dir)], &["create-tenant", "Acme"]);
    assert!(ok, "{stdout}");
    let key = printed_key(&stdout);

    let mut running = store.start(&[]).await;
    let (status, body) = running.get("/api/keys", &key).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"][0]["role"], "ADMIN");
    assert!(running.interrupt());

    let (ok, _) = crm_admin(&[("CRM_DATA_DIR", &data_dir)], &["create-tenant", ""]);
    assert!(!ok, "an empty tenant name is refused");
    let (ok, _) = crm_admin(
        &[("CRM_DATA_DIR", &data_dir)],
        &["create-tenant", " \u{200b}\u{feff} "],
    );
    assert!(!ok, "a tenant name of invisible characters only is refused");
    let (ok, _) = crm_admin(&[("CRM_DATA_DIR", &data_dir)], &["no-such-command"]);
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
    let found =
        common::ports::TenantStore::find_api_key(&store, &common::domain::auth::hash_key(&key))
            .await
            .unwrap()
            .expect("the printed key authenticates");
    assert_eq!(found.role, common::domain::auth::Role::Admin);
}

/// The mode bits of a path.
fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The store holds every tenant's data, webhook secrets and header values: a data directory
/// crm-local makes is its owner's only, and so are the database, WAL and shared-memory files,
/// and the main key the secrets are sealed under.
#[tokio::test]
async fn a_new_data_dir_and_its_files_are_the_owners_only() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("new").join("crm-data");
    let data_dir = dir.to_str().unwrap().to_owned();
    let store = LocalStore::sqlite();
    let key = "files-test-key-0123456789abcdef0123";
    let mut running = store
        .start(&[("CRM_DATA_DIR", &data_dir), ("CRM_DEV_API_KEY", key)])
        .await;
    let (status, body) = running
        .post("/api/clients", key, &json!({"name": "Ada"}))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(mode_of(&dir), 0o700);
    assert_eq!(mode_of(&parent.path().join("new")), 0o700);
    for file in [
        "crm.sqlite3",
        "crm.sqlite3-wal",
        "crm.sqlite3-shm",
        "master.key",
    ] {
        assert_eq!(mode_of(&dir.join(file)), 0o600, "{file}");
    }
    assert!(running.interrupt());
}

/// An earlier version made the files with the umask's mode: opening the store narrows them.
#[test]
fn opening_the_store_narrows_files_an_earlier_version_made() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    drop(common::adapters::sqlite::SqliteStore::open(dir.path()).unwrap());
    let file = dir.path().join("crm.sqlite3");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    drop(common::adapters::sqlite::SqliteStore::open(dir.path()).unwrap());
    assert_eq!(mode_of(&file), 0o600);
}

/// A dev key a person chose is short: `GET /api/keys` shows at most four of its characters.
#[tokio::test]
async fn a_short_dev_key_is_not_told_by_its_prefix() {
    let store = LocalStore::sqlite();
    let key = "dev-secret";
    let mut running = store.start(&[("CRM_DEV_API_KEY", key)]).await;
    let (status, body) = running.get("/api/keys", key).await;
    assert_eq!(status, 200, "{body}");
    let prefix = body["items"][0]["prefix"].as_str().unwrap();
    assert!(
        prefix.len() <= 4 && key.starts_with(prefix),
        "prefix {prefix:?}"
    );
    assert!(running.interrupt());
}
