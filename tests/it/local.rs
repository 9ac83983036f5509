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
    let found = common::ports::Store::find_api_key(&store, &common::domain::auth::hash_key(&key))
        .await
        .unwrap()
        .expect("the printed key authenticates");
    assert_eq!(found.role, common::domain::auth::Role::Admin);
}
