//! An SDK interceptor on the bench's DynamoDB and SQS clients: counts every request sent
//! (per attempt, as AWS bills them) and prices DynamoDB's by `capacity`'s rules.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::operation::batch_get_item::{BatchGetItemInput, BatchGetItemOutput};
use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemInput;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemInput;
use aws_sdk_dynamodb::operation::get_item::{GetItemInput, GetItemOutput};
use aws_sdk_dynamodb::operation::put_item::PutItemInput;
use aws_sdk_dynamodb::operation::query::{QueryInput, QueryOutput};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use aws_sdk_dynamodb::operation::update_item::UpdateItemInput;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

use super::capacity::{item_size, read_units, Item, Keys, Shadow, Units, Update};

/// What a read needs remembered until its response: where it read and how.
#[derive(Debug, Clone)]
struct PendingRead {
    table: String,
    consistent: bool,
}

impl Storable for PendingRead {
    type Storer = StoreReplace<Self>;
}

/// When the operation began, for the time the service waited on it.
#[derive(Debug, Clone, Copy)]
struct Began(Instant);

impl Storable for Began {
    type Storer = StoreReplace<Self>;
}

#[derive(Default)]
struct State {
    calls: BTreeMap<String, u64>,
    waited: BTreeMap<String, Duration>,
    units: Units,
    shadow: Shadow,
}

/// Requests and capacity units since the last `take`.
#[derive(Debug, Clone, Default)]
pub struct Metered {
    /// `service.Operation` → requests sent.
    pub calls: BTreeMap<String, u64>,
    /// `service.Operation` → time from the call to its result, all calls together.
    pub waited: BTreeMap<String, Duration>,
    pub units: Units,
}

impl Metered {
    pub fn add(&mut self, other: Metered) {
        for (name, n) in other.calls {
            *self.calls.entry(name).or_default() += n;
        }
        for (name, d) in other.waited {
            *self.waited.entry(name).or_default() += d;
        }
        self.units.write += other.units.write;
        self.units.read += other.units.read;
    }

    /// Requests to one service (`dynamodb`, `sqs`).
    pub fn requests(&self, service: &str) -> u64 {
        self.calls
            .iter()
            .filter(|(name, _)| name.split('.').next() == Some(service))
            .map(|(_, n)| n)
            .sum()
    }

    /// Mean time per call of one service's operations, leaving out `except` (long polls).
    pub fn mean_wait(&self, service: &str, except: &[&str]) -> Duration {
        let chosen = |name: &String| {
            name.split('.').next() == Some(service)
                && !except.iter().any(|e| name.ends_with(&format!(".{e}")))
        };
        let total: Duration = self
            .waited
            .iter()
            .filter(|(n, _)| chosen(n))
            .map(|(_, d)| *d)
            .sum();
        let count: u64 = self
            .calls
            .iter()
            .filter(|(n, _)| chosen(n))
            .map(|(_, c)| *c)
            .sum();
        total / u32::try_from(count.max(1)).unwrap_or(u32::MAX)
    }

    /// `Operation ×n` per operation of one service, divided by `per`.
    pub fn breakdown(&self, service: &str, per: f64) -> String {
        self.calls
            .iter()
            .filter_map(|(name, n)| {
                let op = name.strip_prefix(service)?.strip_prefix('.')?;
                Some(format!("{op} ×{}", super::figure(*n as f64 / per)))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(Clone)]
pub struct AwsMeter {
    state: Arc<Mutex<State>>,
    keys: Arc<Keys>,
}

impl std::fmt::Debug for AwsMeter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AwsMeter")
    }
}

impl AwsMeter {
    pub fn new() -> AwsMeter {
        AwsMeter {
            state: Arc::default(),
            keys: Arc::new(Keys::of_main_table()),
        }
    }

    /// Counts so far, zeroing them (the copies of items stay, to size later writes).
    pub fn take(&self) -> Metered {
        let mut state = self.state.lock().expect("meter");
        let taken = Metered {
            calls: std::mem::take(&mut state.calls),
            waited: std::mem::take(&mut state.waited),
            units: state.units,
        };
        state.units = Units::default();
        taken
    }

    pub async fn dynamodb(&self, shared: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::config::Builder::from(shared)
            .interceptor(self.clone())
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    pub async fn sqs(&self, shared: &aws_config::SdkConfig) -> aws_sdk_sqs::Client {
        let config = aws_sdk_sqs::config::Builder::from(shared)
            .interceptor(self.clone())
            .build();
        aws_sdk_sqs::Client::from_conf(config)
    }

    fn price_writes(&self, input: &aws_smithy_runtime_api::client::interceptors::context::Input) {
        let keys = &self.keys;
        let mut guard = self.state.lock().expect("meter");
        let state = &mut *guard;
        let shadow = &mut state.shadow;
        let mut units = 0.0;
        if let Some(put) = input.downcast_ref::<PutItemInput>() {
            if let (Some(table), Some(item)) = (&put.table_name, &put.item) {
                units += shadow.put(keys, table, item, false);
            }
        } else if let Some(update) = input.downcast_ref::<UpdateItemInput>() {
            if let (Some(table), Some(key), Some(expression)) =
                (&update.table_name, &update.key, &update.update_expression)
            {
                let parts = Update {
                    key,
                    expression,
                    names: update.expression_attribute_names.as_ref(),
                    values: update.expression_attribute_values.as_ref(),
                };
                units += shadow.update(keys, table, &parts, false);
            }
        } else if let Some(delete) = input.downcast_ref::<DeleteItemInput>() {
            if let (Some(table), Some(key)) = (&delete.table_name, &delete.key) {
                units += shadow.delete(keys, table, key, false);
            }
        } else if let Some(transaction) = input.downcast_ref::<TransactWriteItemsInput>() {
            for write in transaction.transact_items() {
                if let Some(put) = write.put() {
                    units += shadow.put(keys, put.table_name(), put.item(), true);
                } else if let Some(update) = write.update() {
                    let parts = Update {
                        key: update.key(),
                        expression: update.update_expression(),
                        names: update.expression_attribute_names(),
                        values: update.expression_attribute_values(),
                    };
                    units += shadow.update(keys, update.table_name(), &parts, true);
                } else if let Some(delete) = write.delete() {
                    units += shadow.delete(keys, delete.table_name(), delete.key(), true);
                } else if write.condition_check().is_some() {
                    // Checked like a write of the item, at the transactional rate.
                    units += 2.0;
                }
            }
        } else if let Some(batch) = input.downcast_ref::<BatchWriteItemInput>() {
            for (table, requests) in batch.request_items().into_iter().flatten() {
                for request in requests {
                    if let Some(put) = request.put_request() {
                        units += shadow.put(keys, table, put.item(), false);
                    } else if let Some(delete) = request.delete_request() {
                        units += shadow.delete(keys, table, delete.key(), false);
                    }
                }
            }
        }
        state.units.write += units;
    }

    fn price_read(&self, pending: &PendingRead, items: &[Item]) {
        let mut state = self.state.lock().expect("meter");
        let size = items.iter().map(item_size).sum();
        state.units.read += read_units(size, pending.consistent);
        for item in items {
            state.shadow.saw(&self.keys, &pending.table, item);
        }
    }
}

impl Intercept for AwsMeter {
    fn name(&self) -> &'static str {
        "AwsMeter"
    }

    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(Began(Instant::now()));
        let input = context.input();
        let read = if let Some(get) = input.downcast_ref::<GetItemInput>() {
            Some(PendingRead {
                table: get.table_name.clone().unwrap_or_default(),
                consistent: get.consistent_read == Some(true),
            })
        } else if let Some(batch) = input.downcast_ref::<BatchGetItemInput>() {
            let (table, keys) = batch
                .request_items()
                .and_then(|tables| tables.iter().next())
                .map(|(table, keys)| (table.clone(), keys.consistent_read == Some(true)))
                .unwrap_or_default();
            Some(PendingRead {
                table,
                consistent: keys,
            })
        } else if let Some(query) = input.downcast_ref::<QueryInput>() {
            Some(PendingRead {
                table: query.table_name.clone().unwrap_or_default(),
                // Reads of a global secondary index are always eventually consistent.
                consistent: query.consistent_read == Some(true) && query.index_name.is_none(),
            })
        } else {
            self.price_writes(input);
            None
        };
        if let Some(read) = read {
            cfg.interceptor_state().store_put(read);
        }
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let name = cfg.load::<Metadata>().map_or_else(
            || "unknown.unknown".to_owned(),
            |m| format!("{}.{}", m.service().to_ascii_lowercase(), m.name()),
        );
        *self
            .state
            .lock()
            .expect("meter")
            .calls
            .entry(name)
            .or_default() += 1;
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let (Some(began), Some(metadata)) = (cfg.load::<Began>(), cfg.load::<Metadata>()) {
            let name = format!(
                "{}.{}",
                metadata.service().to_ascii_lowercase(),
                metadata.name()
            );
            *self
                .state
                .lock()
                .expect("meter")
                .waited
                .entry(name)
                .or_default() += began.0.elapsed();
        }
        let Some(pending) = cfg.load::<PendingRead>().cloned() else {
            return Ok(());
        };
        if let Some(Ok(output)) = context.output_or_error() {
            if let Some(get) = output.downcast_ref::<GetItemOutput>() {
                let items: Vec<Item> = get.item.clone().into_iter().collect();
                self.price_read(&pending, &items);
            } else if let Some(query) = output.downcast_ref::<QueryOutput>() {
                self.price_read(&pending, query.items());
            } else if let Some(batch) = output.downcast_ref::<BatchGetItemOutput>() {
                // Each item of a batch is priced as a GetItem of its own.
                for items in batch.responses().into_iter().flat_map(|r| r.values()) {
                    for item in items {
                        self.price_read(&pending, std::slice::from_ref(item));
                    }
                }
            }
        }
        Ok(())
    }
}
