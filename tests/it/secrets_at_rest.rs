//! Webhook secrets at rest (docs/architecture.md §Secrets at rest), on both stores: what the raw
//! store holds (the SQLite file and its WAL byte by byte, every DynamoDB item as the SDK returns
//! it), the migration of secrets written in the clear before, and where a sealed secret opens.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::adapters::main_key::MainKey;
use common::domain::auth::Role;
use common::domain::sealed_secret::StoredSecret;
use common::domain::webhook::{Webhook, ROTATION_OVERLAP};
use common::ports::{PlainSecretMigration, SecretStore, Store};
use common::service::secrets::{seal_plain_secrets, SecretKeeper};
use lambda_http::http::StatusCode;
use serde_json::json;

use crate::delivery::{setup, Setup};
use crate::receiver::{Receiver, Reply};
use crate::support::{
    eventually, fresh_store, main_key_keeper, stored_webhook, test_main_key, test_settings,
    Backend, TestApp,
};

crate::on_both_stores!(
    no_secret_is_in_the_clear_in_the_raw_store,
    plain_secrets_are_sealed_by_the_migration_and_signatures_do_not_change,
    the_migration_seals_each_secret_once,
    a_sealed_secret_moved_to_another_webhook_does_not_open,
    secrets_sealed_under_one_main_key_do_not_open_under_another,
    containers_racing_to_make_the_first_data_key_share_one,
);

const WAIT: Duration = Duration::from_secs(20);

/// Where a test's store keeps its bytes, taken before the store is handed to the service, and
/// its migration of plain secrets.
struct Raw {
    sqlite: Option<PathBuf>,
    dynamodb: Option<(aws_sdk_dynamodb::Client, String)>,
    migration: Option<Arc<dyn PlainSecretMigration>>,
}

impl Raw {
    fn migration(&self) -> &dyn PlainSecretMigration {
        self.migration.as_deref().unwrap()
    }
}

impl Raw {
    /// Everything the store holds, as text: the SQLite file and its WAL, or every item of the
    /// table through the SDK.
    async fn contents(&self) -> String {
        if let Some(file) = &self.sqlite {
            let mut text = String::new();
            for suffix in ["", "-wal"] {
                if let Ok(bytes) = std::fs::read(format!("{}{suffix}", file.display())) {
                    text.push_str(&String::from_utf8_lossy(&bytes));
                }
            }
            return text;
        }
        let (client, table) = self.dynamodb.as_ref().unwrap();
        let mut text = String::new();
        let mut start = None;
        loop {
            let page = client
                .scan()
                .table_name(table)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .unwrap();
            for item in page.items() {
                text.push_str(&format!("{item:?}\n"));
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return text,
            }
        }
    }

    /// Fails naming what the store holds in the clear: any `whsec_` text, or the key part of
    /// one of `secrets`.
    async fn assert_nothing_in_the_clear(&self, secrets: &[&str]) {
        let contents = self.contents().await;
        assert!(!contents.is_empty());
        assert!(
            !contents.contains("whsec_"),
            "a secret in the clear in the raw store"
        );
        for secret in secrets {
            let key = secret.trim_start_matches("whsec_");
            assert!(!contents.contains(key), "{secret} in the raw store");
        }
    }
}

/// A service over a fresh store, an ADMIN key, and where the store keeps its bytes.
async fn setup_with_raw(backend: Backend) -> (Setup, Raw) {
    let store = fresh_store(backend).await;
    let raw = Raw {
        sqlite: store.sqlite_file(),
        dynamodb: store.dynamodb.clone(),
        migration: Some(Arc::clone(&store.migration)),
    };
    let app = TestApp::over(store, test_settings());
    let (tenant, key) = app.tenant_with(Role::Admin).await;
    (Setup { app, key, tenant }, raw)
}

/// Sends one `lead.created` through the worker and returns the request the receiver saw.
/// The webhook as the store holds it.
async fn read_back(s: &Setup, id: uuid::Uuid) -> Webhook {
    s.app
        .deps
        .store
        .get_webhook(s.tenant, id)
        .await
        .unwrap()
        .expect("the webhook is stored")
}

async fn deliver_one(s: &Setup, receiver: &Receiver) -> crate::receiver::Seen {
    let before = receiver.seen().len();
    let worker = s.app.start_worker();
    let (status, body) = s
        .app
        .post(
            "/api/webhooks/notify",
            &s.key,
            &json!({"event": "lead.created", "data": {"leadId": "L-1"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let seen = eventually(WAIT, "the delivery to arrive", || async {
        receiver.seen().get(before).cloned()
    })
    .await;
    worker.stop().await;
    seen
}

async fn no_secret_is_in_the_clear_in_the_raw_store(backend: Backend) {
    let (s, raw) = setup_with_raw(backend).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (rotated_id, first) = s.webhook(&receiver, json!({})).await;
    let brought = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let (status, created) = s
        .app
        .post(
            "/api/webhooks",
            &s.key,
            &json!({"url": receiver.url, "events": ["client.*"], "secret": brought}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["secret"], brought);
    let (status, rotation) = s
        .app
        .post(
            &format!("/api/webhooks/{rotated_id}/rotate-secret"),
            &s.key,
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotation}");
    let second = rotation["secret"].as_str().unwrap().to_owned();

    // Sealed, they still sign: the old and the new secret during the rotation's overlap.
    receiver.expect_secrets(&[&first, &second]);
    let seen = deliver_one(&s, &receiver).await;
    assert!(seen.seed_signature_ok && seen.standard_signature_ok);
    assert!(seen.seed_signature_verifies_with(&first));

    raw.assert_nothing_in_the_clear(&[&first, &second, brought])
        .await;
    let stored = read_back(&s, rotated_id).await;
    assert!(stored.secret.is_sealed());
    assert!(stored.previous_secret.unwrap().0.is_sealed());
}

/// A webhook as a version before secrets were sealed wrote it: both secrets in the clear, for
/// `receiver`; returns it and its secrets (current, previous).
async fn plain_webhook(s: &Setup, receiver: &Receiver) -> (Webhook, String, String) {
    let mut webhook = stored_webhook(s.tenant);
    webhook.url = receiver.url.clone();
    let previous = webhook.secret.as_stored().to_owned();
    let now = s.app.deps.clock.now();
    let webhook = webhook.rotated(previous.clone(), ROTATION_OVERLAP, now);
    assert!(!webhook.secret.is_sealed());
    s.app
        .deps
        .store
        .create_webhook(&webhook, 100, None)
        .await
        .unwrap();
    let current = webhook.secret.as_stored().to_owned();
    (webhook, current, previous)
}

async fn plain_secrets_are_sealed_by_the_migration_and_signatures_do_not_change(backend: Backend) {
    let (s, raw) = setup_with_raw(backend).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (webhook, current, previous) = plain_webhook(&s, &receiver).await;
    receiver.expect_secrets(&[&current, &previous]);
    // Read in the clear until the migration: no downtime.
    let before = deliver_one(&s, &receiver).await;
    assert!(before.seed_signature_ok && before.standard_signature_ok);
    assert!(raw.contents().await.contains(&current));

    let sealed = seal_plain_secrets(&s.app.deps.secrets, raw.migration())
        .await
        .unwrap();
    assert_eq!(sealed, 1);

    raw.assert_nothing_in_the_clear(&[&current, &previous])
        .await;
    let after = deliver_one(&s, &receiver).await;
    assert!(after.seed_signature_ok && after.standard_signature_ok);
    // The same secrets sign: a seed-era receiver still verifies with the one it holds.
    assert!(after.seed_signature_verifies_with(&previous));
    let stored = read_back(&s, webhook.id).await;
    assert_eq!(
        stored.version,
        webhook.version + 1,
        "a change read before must not win"
    );
    let opened = s.app.deps.secrets.open(&stored).await.unwrap();
    assert_eq!(opened.current, current);
    assert_eq!(opened.previous.map(|(text, _)| text), Some(previous));
}

/// Run again, it finds nothing to do; sealed secrets written since are left as they are.
async fn the_migration_seals_each_secret_once(backend: Backend) {
    let (s, raw) = setup_with_raw(backend).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (plain, current, _) = plain_webhook(&s, &receiver).await;
    let (sealed_id, sealed_secret) = s.webhook(&receiver, json!({})).await;
    let store = raw.migration();
    let secrets = &s.app.deps.secrets;
    let sealed_before = read_back(&s, sealed_id).await;

    assert_eq!(seal_plain_secrets(secrets, store).await.unwrap(), 1);
    let once = read_back(&s, plain.id).await;
    assert_eq!(seal_plain_secrets(secrets, store).await.unwrap(), 0);
    let twice = read_back(&s, plain.id).await;
    assert_eq!(once, twice, "a sealed secret is not sealed again");
    let sealed_after = read_back(&s, sealed_id).await;
    assert_eq!(sealed_before, sealed_after);
    raw.assert_nothing_in_the_clear(&[&current, &sealed_secret])
        .await;
}

async fn a_sealed_secret_moved_to_another_webhook_does_not_open(backend: Backend) {
    let s = setup(backend).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (a, _) = s.webhook(&receiver, json!({})).await;
    let (b, _) = s.webhook(&receiver, json!({})).await;
    let store = &s.app.deps.store;
    let a = store.get_webhook(s.tenant, a).await.unwrap().unwrap();
    let b = store.get_webhook(s.tenant, b).await.unwrap().unwrap();
    let mut moved = b.clone();
    moved.secret = a.secret.clone();
    moved.version += 1;
    store.update_webhook(b.version, &moved, None).await.unwrap();

    let moved = store.get_webhook(s.tenant, b.id).await.unwrap().unwrap();
    let error = s.app.deps.secrets.open(&moved).await.unwrap_err();
    assert!(error.to_string().contains("does not open"), "{error}");
    assert!(s.app.deps.secrets.open(&a).await.is_ok());
    // Nor as the other slot of the same webhook: a current secret is not a previous one.
    let mut swapped = a.clone();
    swapped.previous_secret = Some((a.secret.clone(), s.app.deps.clock.now() + ROTATION_OVERLAP));
    assert!(s.app.deps.secrets.open(&swapped).await.is_err());
}

async fn secrets_sealed_under_one_main_key_do_not_open_under_another(backend: Backend) {
    let s = setup(backend).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (id, secret) = s.webhook(&receiver, json!({})).await;
    let webhook = read_back(&s, id).await;

    // Another process of the same deployment: same main key, its own unwrapped data key.
    let same = main_key_keeper(&s.app.deps.store, &test_main_key());
    assert_eq!(same.open(&webhook).await.unwrap().current, secret);
    let other = main_key_keeper(&s.app.deps.store, &MainKey::random());
    let error = other.open(&webhook).await.unwrap_err().to_string();
    assert!(error.contains("CRM_MASTER_KEY"), "{error}");
}

/// Ten processes seal their first secret at once on a store without a data key: one key is
/// made, and each opens what the others sealed.
async fn containers_racing_to_make_the_first_data_key_share_one(backend: Backend) {
    let s = setup(backend).await;
    let store: Arc<dyn Store> = Arc::clone(&s.app.deps.store);
    let sealing = (0..10).map(|_| {
        let store = Arc::clone(&store);
        let tenant = s.tenant;
        tokio::spawn(async move {
            let keeper = main_key_keeper(&store, &test_main_key());
            let mut webhook = stored_webhook(tenant);
            let plain = webhook.secret.as_stored().to_owned();
            keeper.seal(&mut webhook).await.unwrap();
            (webhook, plain)
        })
    });
    let sealed: Vec<(Webhook, String)> = futures::future::join_all(sealing)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(store.data_keys().await.unwrap().len(), 1);
    let reader = main_key_keeper(&store, &test_main_key());
    for (webhook, plain) in &sealed {
        assert!(matches!(webhook.secret, StoredSecret::Sealed(_)));
        assert_eq!(&reader.open(webhook).await.unwrap().current, plain);
    }
}

/// A process given no main key (a function that never touches a secret) refuses to seal or to
/// open a sealed secret, and still reads a plain one (the migration window).
#[tokio::test]
async fn a_process_without_a_main_key_neither_seals_nor_opens() {
    let s = setup(Backend::Sqlite).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (id, _) = s.webhook(&receiver, json!({})).await;
    let sealed = read_back(&s, id).await;
    let keyless = SecretKeeper::without_key();
    let error = keyless.open(&sealed).await.unwrap_err().to_string();
    assert!(error.contains("CRM_KMS_KEY_ID"), "{error}");
    let mut new = stored_webhook(s.tenant);
    assert!(keyless.seal(&mut new).await.is_err());
    let plain = new.secret.as_stored().to_owned();
    assert_eq!(keyless.open(&new).await.unwrap().current, plain);
}

/// crm-local seals the plain secrets of a SQLite store when it starts, before serving, under
/// the main key it made in the data directory; the same secrets sign afterwards.
#[tokio::test]
async fn crm_local_seals_plain_secrets_when_it_opens_its_store() {
    use common::adapters::sqlite::SqliteStore;
    use common::config::{Config, Mode};
    use common::service::tenants::create_tenant;

    let dir = tempfile::tempdir().unwrap();
    let (tenant, webhook, plain) = {
        let store = SqliteStore::open(dir.path()).unwrap();
        let (tenant, _) = create_tenant(&store, &common::ports::SystemClock, "Old Ltd")
            .await
            .unwrap();
        let webhook = stored_webhook(tenant.id);
        common::ports::WebhookStore::create_webhook(&store, &webhook, 100, None)
            .await
            .unwrap();
        (
            tenant,
            webhook.clone(),
            webhook.secret.as_stored().to_owned(),
        )
    };
    let data_dir = dir.path().display().to_string();
    let config = Config::from_lookup(Mode::Local, |name| {
        (name == "CRM_DATA_DIR").then(|| data_dir.clone())
    })
    .unwrap();
    let deps = config.build_deps().await.unwrap();

    let raw = Raw {
        sqlite: Some(dir.path().join(common::adapters::sqlite::DB_FILE)),
        dynamodb: None,
        migration: None,
    };
    raw.assert_nothing_in_the_clear(&[&plain]).await;
    let key_file = dir.path().join("master.key");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let stored = deps
        .store
        .get_webhook(tenant.id, webhook.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(deps.secrets.open(&stored).await.unwrap().current, plain);
}

/// `crm-admin encrypt-secrets`, as the README has an operator run it against a deployed table
/// (here with `CRM_MASTER_KEY` instead of the stack's KMS key): seals, then finds nothing to do.
#[tokio::test]
async fn crm_admin_encrypt_secrets_seals_a_table_written_in_the_clear() {
    use crate::crm_local::crm_admin;
    use crate::support::TEST_MAIN_KEY;

    let (s, raw) = setup_with_raw(Backend::DynamoDb).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (_, current, previous) = plain_webhook(&s, &receiver).await;
    let table = raw.dynamodb.as_ref().unwrap().1.clone();
    let env = [
        ("CRM_TABLE", table.as_str()),
        ("CRM_MASTER_KEY", TEST_MAIN_KEY),
    ];
    let (ok, stdout) = crm_admin(&env, &["encrypt-secrets"]);
    assert!(ok, "{stdout}");
    assert!(
        stdout.starts_with("1 webhooks had secrets in the clear"),
        "{stdout}"
    );
    raw.assert_nothing_in_the_clear(&[&current, &previous])
        .await;
    let (ok, stdout) = crm_admin(&env, &["encrypt-secrets"]);
    assert!(ok && stdout.starts_with("0 webhooks"), "{stdout}");
    // Without a key it says which it needs.
    let (ok, _) = crm_admin(&[("CRM_TABLE", table.as_str())], &["encrypt-secrets"]);
    assert!(!ok);

    receiver.expect_secrets(&[&current, &previous]);
    let seen = deliver_one(&s, &receiver).await;
    assert!(seen.seed_signature_ok && seen.standard_signature_ok);
}

/// The stack's KMS key on the emulator: a service whose data key KMS wraps seals, signs, and
/// another container (another keeper over the same table) opens with one Decrypt; a container
/// given another KMS key does not.
#[tokio::test]
async fn a_data_key_wrapped_by_kms_opens_in_every_container_with_the_key() {
    use common::adapters::kms::KmsKeyWrapper;
    use common::adapters::sdk_config::shared_config;

    let (s, raw) = setup_with_raw(Backend::DynamoDb).await;
    let config = shared_config().await;
    let kms = aws_sdk_kms::Client::new(&config);
    let key_arn = |key: aws_sdk_kms::operation::create_key::CreateKeyOutput| {
        key.key_metadata.unwrap().arn.unwrap()
    };
    let stack_key = key_arn(kms.create_key().send().await.unwrap());
    let other_key = key_arn(kms.create_key().send().await.unwrap());
    let store: Arc<dyn SecretStore> = Arc::clone(&s.app.deps.store) as Arc<dyn SecretStore>;
    let keeper = |key: &str| {
        SecretKeeper::new(
            Arc::new(KmsKeyWrapper::new(config.clone(), key)),
            Arc::clone(&store),
        )
    };
    let secrets = keeper(&stack_key);
    let s = Setup {
        app: s.app.with_secrets(secrets),
        ..s
    };

    let receiver = Receiver::start(Reply::Status(200)).await;
    let (id, secret) = s.webhook(&receiver, json!({})).await;
    let seen = deliver_one(&s, &receiver).await;
    assert!(seen.seed_signature_ok && seen.standard_signature_ok);
    raw.assert_nothing_in_the_clear(&[&secret]).await;
    let keys = s.app.deps.store.data_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].wrapped_by, "aws-kms");

    let webhook = read_back(&s, id).await;
    assert_eq!(
        keeper(&stack_key).open(&webhook).await.unwrap().current,
        secret
    );
    let error = keeper(&other_key).open(&webhook).await.unwrap_err();
    assert!(error.to_string().contains("KMS"), "{error}");
}

/// crm-local with a main key it cannot use does not start, and says why.
#[test]
fn crm_local_refuses_a_main_key_that_is_not_one_or_that_others_may_read() {
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    let start = |dir: &std::path::Path, main_key: Option<&str>| {
        let mut command = Command::new(crate::crm_local::binary("crm-local"));
        command
            .env("PORT", "0")
            .env("CRM_DATA_DIR", dir)
            .env_remove("CRM_TABLE")
            .env_remove("CRM_QUEUE_URL")
            .env_remove("CRM_KMS_KEY_ID")
            .env_remove("CRM_MASTER_KEY");
        if let Some(key) = main_key {
            command.env("CRM_MASTER_KEY", key);
        }
        let output = command.output().unwrap();
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let dir = tempfile::tempdir().unwrap();
    let said = start(dir.path(), Some("hunter2"));
    assert!(said.contains("CRM_MASTER_KEY must be 32 bytes"), "{said}");

    let key_file = dir.path().join("master.key");
    std::fs::write(&key_file, format!("{}\n", crate::support::TEST_MAIN_KEY)).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let said = start(dir.path(), None);
    assert!(said.contains("chmod 600"), "{said}");
}
