//! The stats and cost sections' setting: the service's own `Deps` on a real store (SQLite in a
//! temp dir, or DynamoDB and SQS on the moto server `scripts/bench.sh` starts), with the
//! counting layer in between, and requests sent through the HTTP glue the Lambdas call.

use std::sync::Arc;
use std::time::Duration;

use common::adapters::dynamodb::tables::{create_table, main_table};
use common::adapters::dynamodb::DynamoStore;
use common::adapters::http_sender::HttpSender;
use common::adapters::main_key::{MainKey, MainKeyWrapper};
use common::adapters::sqlite::SqliteStore;
use common::adapters::sqs::{create_queues, SqsQueue};
use common::domain::webhook::TargetPolicy;
use common::http::routes::Route;
use common::ports::{Queue, Store, SystemClock};
use common::service::deps::{DeliverySettings, Deps, TenantLimits};
use common::service::secrets::SecretKeeper;
use lambda_http::http::{Method, Request};
use lambda_http::Body;

use crate::counting::{AwsMeter, CallCounts, CountingStore};

/// The service over one store, with its meters.
pub struct Service {
    pub deps: Deps,
    pub port: Arc<CountingStore>,
    /// Set on AWS: the SDK requests and capacity units under the port.
    pub aws: Option<AwsAccess>,
    /// An ADMIN key of the tenant the section works in.
    pub key: String,
    /// That tenant.
    pub tenant_id: uuid::Uuid,
    _dir: Option<tempfile::TempDir>,
}

pub struct AwsAccess {
    pub meter: AwsMeter,
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
}

/// What crm-local allows: the benchmarks' receivers are plain HTTP on 127.0.0.1. The sections
/// send one tenant's events as fast as the engine takes them, which is the figure measured, so
/// its per-second limit is lifted (the count is still taken on every notify, and on DynamoDB written and costed).
pub fn settings() -> DeliverySettings {
    DeliverySettings {
        targets: TargetPolicy {
            allow_http: true,
            allow_private: true,
        },
        limits: TenantLimits {
            events_per_second: UNLIMITED_EVENTS_PER_SECOND,
            ..TenantLimits::default()
        },
        ..DeliverySettings::default()
    }
}

/// `CRM_MAX_EVENTS_PER_SECOND` for the benchmarks: above any rate two cores reach.
pub const UNLIMITED_EVENTS_PER_SECOND: usize = 1_000_000;

/// The visibility timeout of the bench's queue: the worker's 60 s timeout × 6, as deployed.
const VISIBILITY: Duration = Duration::from_secs(360);

impl Service {
    pub async fn sqlite() -> anyhow::Result<Service> {
        let dir = tempfile::tempdir()?;
        let store = SqliteStore::open(dir.path())?;
        let queue: Arc<dyn Queue> = Arc::new(store.queue(VISIBILITY));
        Service::over(Arc::new(store), queue, None, Some(dir)).await
    }

    /// A new table and queue on the emulator at `AWS_ENDPOINT_URL`, named for this run.
    pub async fn dynamodb(purpose: &str) -> anyhow::Result<Service> {
        anyhow::ensure!(
            std::env::var("AWS_ENDPOINT_URL").is_ok(),
            "the {purpose} section needs moto: run it through scripts/bench.sh"
        );
        let shared = common::adapters::sdk_config::shared_config().await;
        let meter = AwsMeter::new();
        let dynamodb = meter.dynamodb(&shared).await;
        let sqs = meter.sqs(&shared).await;
        let name = format!("crm-bench-{purpose}-{}", uuid::Uuid::new_v4().simple());
        create_table(&dynamodb, &name, &main_table()).await?;
        let queue_url = create_queues(&sqs, &name, VISIBILITY).await?;
        let store = Arc::new(DynamoStore::new(dynamodb, name));
        let queue = Arc::new(SqsQueue::new(sqs.clone(), queue_url.clone()));
        let aws = AwsAccess {
            meter,
            sqs,
            queue_url,
        };
        Service::over(store, queue, Some(aws), None).await
    }

    async fn over(
        store: Arc<dyn Store>,
        queue: Arc<dyn Queue>,
        aws: Option<AwsAccess>,
        dir: Option<tempfile::TempDir>,
    ) -> anyhow::Result<Service> {
        let port = Arc::new(CountingStore::new(store, CallCounts::default()));
        let settings = settings();
        let sender = HttpSender::new(settings.targets.allow_http, settings.targets.allow_private)?;
        let wrapper = MainKeyWrapper::new(&MainKey::random())?;
        let deps = Deps::new(
            Arc::clone(&port) as Arc<dyn Store>,
            queue,
            Arc::new(sender),
            settings,
        )
        .with_secrets(SecretKeeper::new(Arc::new(wrapper), port.clone()));
        let (tenant, key) =
            common::service::tenants::create_tenant(deps.store.as_ref(), &SystemClock, "bench")
                .await?;
        let service = Service {
            deps,
            port,
            aws,
            key,
            tenant_id: tenant.id,
            _dir: dir,
        };
        service.reset_meters();
        Ok(service)
    }

    pub fn reset_meters(&self) {
        self.port.take();
        if let Some(aws) = &self.aws {
            aws.meter.take();
        }
    }

    /// One request through `common::http::handle`, as API Gateway hands it to a function.
    pub async fn call(
        &self,
        routes: &[Route],
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> anyhow::Result<serde_json::Value> {
        self.call_as(&self.key, routes, method, path, body).await
    }

    /// `call` with another tenant's key.
    pub async fn call_as(
        &self,
        key: &str,
        routes: &[Route],
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> anyhow::Result<serde_json::Value> {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(body.map_or(Body::Empty, Body::Text))?;
        let response = common::http::handle(&self.deps, routes, request).await;
        let status = response.status();
        let json: serde_json::Value =
            serde_json::from_slice(response.body()).unwrap_or(serde_json::Value::Null);
        anyhow::ensure!(status.is_success(), "{path} answered {status}: {json}");
        Ok(json)
    }
}

/// The functions' memory from the SAM template's Globals, in GB.
pub fn lambda_memory_gb() -> f64 {
    let template = include_str!("../../infra/template.yaml");
    let mb = template
        .lines()
        .find_map(|line| line.trim().strip_prefix("MemorySize:"))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .unwrap_or(128.0);
    mb / 1024.0
}
