//! Many writers on one tenant, with DynamoDB's rule for concurrent transactions: a transaction
//! that names an item another transaction is still writing is cancelled (`TransactionConflict`),
//! and so is a single-item write to such an item. moto serialises DynamoDB requests and never
//! refuses; here an HTTP client between the SDK and moto applies that rule to the requests in
//! flight (sent, not yet answered), so the service's own retries and refusals show up as they
//! would on DynamoDB. moto's serialising makes a request wait its turn while in flight, so the
//! figures are higher than on DynamoDB: they compare layouts, not regions.
//!
//! The writers are 32 concurrent callers of `POST /api/crm/update-sync-status` on one tenant,
//! each moving its own clients between statuses: the tenant's sync counters are in every one of
//! their transactions. The test prints the conflict retries and the refused updates per 1,000,
//! and checks that nothing was lost for them: each update was applied or refused with the
//! seed's envelope, and the counters equal a recount of the clients.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use common::adapters::sdk_config::shared_config;
use common::adapters::sdk_http::SdkHttpClient;
use common::domain::auth::Role;
use lambda_http::http::StatusCode;
use serde_json::{json, Value};

use crate::conflicts::{conflict_exception, error_response, transaction_cancelled};
use crate::support::{
    assert_counters_recount, assert_error, fresh_dynamodb, test_settings, TestApp,
};

/// Concurrent callers, as the issue of contention is put: 32 writers on one tenant.
const WRITERS: usize = 32;
/// Clients per writer; each update moves one of them to the next status.
const CLIENTS_PER_WRITER: usize = 2;
/// Updates per writer.
const UPDATES_PER_WRITER: usize = 16;
const STATUSES: [&str; 4] = ["SYNCED", "FAILED", "NEEDS_UPDATE", "PENDING"];

/// The items of the transactions in flight, and what was refused.
#[derive(Debug, Default)]
struct Transactions {
    /// Each item key held by a transaction in flight, with how many hold it (a transaction
    /// that names an item twice is refused by DynamoDB itself).
    held: Mutex<HashMap<String, usize>>,
    refused: Mutex<HashMap<&'static str, usize>>,
}

impl Transactions {
    fn refused(&self, what: &'static str) -> usize {
        self.refused.lock().unwrap().get(what).copied().unwrap_or(0)
    }

    fn refuse(&self, what: &'static str) {
        *self.refused.lock().unwrap().entry(what).or_default() += 1;
    }
}

/// The key of each item a write request names (`TableName`, then the key attributes as sent).
fn items_of(operation: &str, body: &Value) -> Vec<String> {
    let key_of = |table: &Value, item: &Value| {
        let item = item.as_object()?;
        // The key attributes of every table and index here are `pk` and `sk`.
        Some(format!("{table}|{}|{}", item.get("pk")?, item.get("sk")?))
    };
    match operation {
        "TransactWriteItems" => body["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|action| {
                let (_, op) = action.as_object()?.iter().next()?;
                key_of(&op["TableName"], op.get("Key").or(op.get("Item"))?)
            })
            .collect(),
        "PutItem" => key_of(&body["TableName"], &body["Item"])
            .into_iter()
            .collect(),
        "UpdateItem" | "DeleteItem" => key_of(&body["TableName"], &body["Key"])
            .into_iter()
            .collect(),
        _ => Vec::new(),
    }
}

fn refusal(transaction: bool, actions: usize, conflicting: &[usize]) -> HttpResponse {
    let error = if transaction {
        transaction_cancelled(actions, |index| conflicting.contains(&index))
    } else {
        conflict_exception()
    };
    error_response(400, &error)
}

/// The service's own SDK HTTP client, with DynamoDB's conflict rule in front of it.
#[derive(Debug)]
struct Contended {
    inner: SdkHttpClient,
    transactions: Arc<Transactions>,
}

impl HttpClient for Contended {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(ContendedConnector {
            inner: self.inner.http_connector(settings, components),
            transactions: Arc::clone(&self.transactions),
        })
    }
}

#[derive(Debug)]
struct ContendedConnector {
    inner: SharedHttpConnector,
    transactions: Arc<Transactions>,
}

/// Releases a transaction's items when its answer arrives, or when it is dropped unanswered.
struct Holding {
    transactions: Arc<Transactions>,
    items: Vec<String>,
}

impl Drop for Holding {
    fn drop(&mut self) {
        let mut held = self.transactions.held.lock().unwrap();
        for item in &self.items {
            if let Some(count) = held.get_mut(item) {
                *count -= 1;
                if *count == 0 {
                    held.remove(item);
                }
            }
        }
    }
}

impl HttpConnector for ContendedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let operation = request
            .headers()
            .get("x-amz-target")
            .and_then(|target| target.strip_prefix("DynamoDB_20120810."))
            .map(str::to_owned)
            .unwrap_or_default();
        let body: Value = request
            .body()
            .bytes()
            .and_then(|bytes| serde_json::from_slice(bytes).ok())
            .unwrap_or(Value::Null);
        let items = items_of(&operation, &body);
        if items.is_empty() {
            return self.inner.call(request);
        }
        let transaction = operation == "TransactWriteItems";
        let holding = {
            let mut held = self.transactions.held.lock().unwrap();
            let conflicting: Vec<usize> = items
                .iter()
                .enumerate()
                .filter(|(_, item)| held.contains_key(*item))
                .map(|(index, _)| index)
                .collect();
            if !conflicting.is_empty() {
                drop(held);
                self.transactions.refuse(if transaction {
                    "TransactWriteItems cancelled: TransactionConflict"
                } else {
                    "single-item write: TransactionConflictException"
                });
                return HttpConnectorFuture::ready(Ok(refusal(
                    transaction,
                    items.len(),
                    &conflicting,
                )));
            }
            // Only a transaction holds its items: two single-item writes never conflict.
            if !transaction {
                None
            } else {
                for item in &items {
                    *held.entry(item.clone()).or_default() += 1;
                }
                Some(Holding {
                    transactions: Arc::clone(&self.transactions),
                    items,
                })
            }
        };
        let answer = self.inner.call(request);
        HttpConnectorFuture::new(async move {
            let answered = answer.await;
            drop(holding);
            answered
        })
    }
}

/// What the writers met, per 1,000 updates.
#[derive(Debug)]
struct Contention {
    updates: usize,
    applied: usize,
    conflicts_refused: usize,
    retries: usize,
}

impl Contention {
    fn per_thousand(&self, n: usize) -> f64 {
        n as f64 * 1000.0 / self.updates as f64
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_writers_on_one_tenant_lose_no_update_and_report_their_conflicts() {
    let transactions = Arc::new(Transactions::default());
    let config = shared_config()
        .await
        .to_builder()
        .http_client(SharedHttpClient::new(Contended {
            inner: SdkHttpClient::default(),
            transactions: Arc::clone(&transactions),
        }))
        .build();
    let app = TestApp::over(
        fresh_dynamodb(aws_sdk_dynamodb::Client::new(&config)).await,
        test_settings(),
    );
    let (_, key) = app.tenant_with(Role::Admin).await;
    let mut clients = Vec::with_capacity(WRITERS * CLIENTS_PER_WRITER);
    for n in 0..WRITERS * CLIENTS_PER_WRITER {
        clients.push(app.create_client(&key, &format!("Client {n}")).await);
    }
    let set_up_refusals = transactions.refused("TransactWriteItems cancelled: TransactionConflict");

    let writers = clients.chunks(CLIENTS_PER_WRITER).map(|own| {
        let (app, key) = (&app, &key);
        async move {
            let mut answers = Vec::with_capacity(UPDATES_PER_WRITER);
            for n in 0..UPDATES_PER_WRITER {
                let client = own[n % own.len()];
                let status = STATUSES[(n / own.len()) % STATUSES.len()];
                let update = json!({"clientId": client, "status": status});
                let (code, body) = app.post("/api/crm/update-sync-status", key, &update).await;
                answers.push((client, status, code, body));
            }
            answers
        }
    });
    let answers: Vec<_> = futures::future::join_all(writers)
        .await
        .into_iter()
        .flatten()
        .collect();

    // Each update applied, or refused in the seed's envelope as a conflict to try again.
    let mut last_applied: HashMap<_, &str> = HashMap::new();
    let mut refused = 0;
    for (client, status, code, body) in &answers {
        match *code {
            StatusCode::OK => {
                assert_eq!(body, &json!({"success": true}));
                last_applied.insert(*client, *status);
            }
            StatusCode::CONFLICT => {
                assert_error(*code, body, StatusCode::CONFLICT);
                refused += 1;
            }
            other => panic!("update of {client} to {status}: {other} {body}"),
        }
    }
    // Each client holds its writer's last applied status, and the counters count them.
    let (statuses, _) = assert_counters_recount(&app, &key, &clients).await;
    for (client, applied) in &last_applied {
        assert_eq!(statuses[client], *applied, "client {client}");
    }

    let contention = Contention {
        updates: answers.len(),
        applied: answers.len() - refused,
        conflicts_refused: refused,
        retries: transactions.refused("TransactWriteItems cancelled: TransactionConflict")
            - set_up_refusals
            + transactions.refused("single-item write: TransactionConflictException"),
    };
    println!(
        "contention, {WRITERS} writers on one tenant, {} updates: {} applied; per 1,000 \
         updates: {:.0} conflict retries (writes DynamoDB's rule refused and the service sent \
         again), {:.1} refused with 409",
        contention.updates,
        contention.applied,
        contention.per_thousand(contention.retries),
        contention.per_thousand(contention.conflicts_refused),
    );
    assert_eq!(contention.updates, WRITERS * UPDATES_PER_WRITER);
    assert!(
        contention.retries > 0,
        "32 writers whose transactions share the tenant's counters met no conflict: the rule \
         in front of moto did not apply"
    );
}
