//! Deliveries, payloads, attempts and delivery counters as DynamoDB items (their keys: the
//! table in `dynamodb/mod.rs`). Deliveries and attempts carry `expires_at` (TTL) once finished;
//! a payload from its creation.
//!
//! An event's payload (up to 256 KiB) has an item of its own, written once and shared by all the
//! event's deliveries: a fan-out to a thousand webhooks writes one copy, and since DynamoDB bills
//! a write by the size of the whole item (and each index holding the item copies it), the state
//! transitions (claim, result, requeue) write a small item instead of rewriting the body.
//! Deliveries written by earlier versions keep their payload inline or in an item of their own
//! (`payload (earlier)`); reads accept all three.
//! The tenant-wide counts are the sum of the webhooks' (`DELIVERY_COUNTS#ALL`, written by earlier
//! versions, equals that sum and is no longer read): one counter item per transition, not two.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::adapters::dynamodb::attributes::*;
use crate::adapters::dynamodb::tables::{
    GSI1_PK, GSI1_SK, GSI2_PK, GSI2_SK, SEARCH_EVENT_PK, SEARCH_SK, SEARCH_TENANT_PK,
    SEARCH_WEBHOOK_EVENT_PK, SEARCH_WEBHOOK_PK, SK, TTL,
};
use crate::adapters::dynamodb::{shard_of, tenant_pk, VERSION};
use crate::domain::delivery::{
    Attempt, Delivery, DeliveryStatus, DeliverySummary, DueDelivery, EventPayload, StatusCounts,
};
use crate::domain::retention::Retention;
use crate::error::Result;
use crate::ports::DeliveryRef;
use crate::time::rfc3339;

pub(super) const DELIVERY_SK_PREFIX: &str = "DELIVERY#";
pub(super) const COUNTS_SK_PREFIX: &str = "DELIVERY_COUNTS#";
pub(super) const COUNTS_ALL: &str = "DELIVERY_COUNTS#ALL";

pub(super) fn delivery_sk(id: Uuid) -> String {
    format!("{DELIVERY_SK_PREFIX}{id}")
}

/// Where a delivery written by an earlier version keeps its own copy of the payload: `#0` sorts
/// it between the delivery and its attempts (`#ATTEMPT#…`), so one Query reads both.
pub(super) fn payload_sk(id: Uuid) -> String {
    format!("{DELIVERY_SK_PREFIX}{id}#0PAYLOAD")
}

/// The payload shared by the deliveries of an event.
pub(super) fn event_payload_sk(event_id: Uuid) -> String {
    format!("PAYLOAD#{event_id}")
}

pub(super) fn attempt_prefix(id: Uuid) -> String {
    format!("{DELIVERY_SK_PREFIX}{id}#ATTEMPT#")
}

pub(super) fn counts_sk(webhook_id: Uuid) -> String {
    format!("{COUNTS_SK_PREFIX}{webhook_id}")
}

pub(super) fn due_index_pk(shard: u8) -> String {
    format!("DUE#{shard}")
}

/// Sorted by due time: the sweeper reads those due before a time as one key range.
pub(super) fn due_index_sk(due: DateTime<Utc>, delivery_id: Uuid) -> String {
    format!("{}#{delivery_id}", rfc3339(due))
}

pub(super) fn failed_index_pk(tenant_id: Uuid) -> String {
    format!("TENANT#{tenant_id}#FAILED")
}

/// Sorted by webhook, so that one webhook's FAILED deliveries are one key range.
pub(super) fn failed_index_sk(webhook_id: Uuid, delivery_id: Uuid) -> String {
    format!("{webhook_id}#{delivery_id}")
}

/// A FAILED delivery's reference, from its sort key in the FAILED index.
pub(super) fn failed_ref_from_item(item: &Item) -> Result<DeliveryRef> {
    let sort = text_of(item, GSI1_SK)?;
    let parse = |text: Option<&str>| text.and_then(|t| Uuid::parse_str(t).ok());
    let mut parts = sort.split('#');
    match (parse(parts.next()), parse(parts.next())) {
        (Some(webhook_id), Some(delivery_id)) => Ok(DeliveryRef {
            webhook_id,
            delivery_id,
        }),
        _ => Err(corrupt(GSI1_SK)),
    }
}

pub(super) fn webhook_index_pk(tenant_id: Uuid, webhook_id: Uuid) -> String {
    format!("TENANT#{tenant_id}#WEBHOOK#{webhook_id}")
}

/// The delivery id of a key (or item) of the webhook index, its sort key.
pub(super) fn index_delivery_id(key: &Item) -> Result<Uuid> {
    uuid_of(key, GSI2_SK)
}

/// A search index's partition: the tenant, the index's fixed dimensions (`parts`: an event, a
/// webhook, both, or none), and a shard of the delivery id, so that one tenant's deliveries at
/// 1,000 a second spread their index writes (a put, and a delete and a put per status change)
/// over `SHARDS` partitions. A search reads every shard.
pub(super) fn search_pk(tenant_id: Uuid, parts: &[&str], shard: u8) -> String {
    let mut pk = tenant_id.to_string();
    for part in parts {
        pk.push('#');
        pk.push_str(part);
    }
    format!("{pk}#{shard}")
}

/// The search indexes' sort key: the status, then the id, so that a status's deliveries are
/// one range in id (creation) order.
pub(super) fn search_sk(status: DeliveryStatus, id: Uuid) -> String {
    format!("{}#{id}", status.as_str())
}

/// The delivery id of a search index's key.
pub(super) fn search_delivery_id(key: &Item) -> Result<Uuid> {
    text_of(key, SEARCH_SK)?
        .split_once('#')
        .and_then(|(_, id)| Uuid::parse_str(id).ok())
        .ok_or_else(|| corrupt(SEARCH_SK))
}

/// The search indexes' keys of a delivery (`tables::SEARCH_*`).
fn search_keys(d: &Delivery) -> [(&'static str, String); 5] {
    let shard = shard_of(d.id);
    let webhook = d.webhook_id.to_string();
    [
        (SEARCH_TENANT_PK, search_pk(d.tenant_id, &[], shard)),
        (SEARCH_EVENT_PK, search_pk(d.tenant_id, &[&d.event], shard)),
        (
            SEARCH_WEBHOOK_PK,
            search_pk(d.tenant_id, &[&webhook], shard),
        ),
        (
            SEARCH_WEBHOOK_EVENT_PK,
            search_pk(d.tenant_id, &[&webhook, &d.event], shard),
        ),
        (SEARCH_SK, search_sk(d.status, d.id)),
    ]
}

pub(super) fn status_counter_name(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Pending => "pending",
        DeliveryStatus::Success => "success",
        DeliveryStatus::Failed => "failed",
        DeliveryStatus::Retrying => "retrying",
        DeliveryStatus::Cancelled => "cancelled",
    }
}

/// A finished delivery carries its expiry (`Retention::expiry` of its last change), then
/// DynamoDB's TTL removes it. A payload's item is never rewritten by a transition, so it cannot
/// take the finished delivery's expiry: it lives `Retention::payload_expiry` of its creation (or
/// of a manual retry, which extends it).
pub(super) fn delivery_item(d: &Delivery, retention: Retention) -> Item {
    let mut item = key(tenant_pk(d.tenant_id), delivery_sk(d.id));
    match d.status {
        status if status.is_open() => {
            let due = d.next_attempt_at.unwrap_or(d.updated_at);
            item.insert(GSI1_PK.into(), text(due_index_pk(shard_of(d.id))));
            item.insert(GSI1_SK.into(), text(due_index_sk(due, d.id)));
        }
        DeliveryStatus::Failed => {
            item.insert(GSI1_PK.into(), text(failed_index_pk(d.tenant_id)));
            item.insert(GSI1_SK.into(), text(failed_index_sk(d.webhook_id, d.id)));
        }
        _ => {}
    }
    if !d.status.is_open() {
        item.insert(
            TTL.into(),
            number(retention.expiry(d.updated_at).timestamp()),
        );
    }
    item.insert(
        GSI2_PK.into(),
        text(webhook_index_pk(d.tenant_id, d.webhook_id)),
    );
    item.insert(GSI2_SK.into(), text(d.id.to_string()));
    for (name, value) in search_keys(d) {
        item.insert(name.into(), text(value));
    }
    item.insert("id".into(), text(d.id.to_string()));
    item.insert("tenant_id".into(), text(d.tenant_id.to_string()));
    item.insert("webhook_id".into(), text(d.webhook_id.to_string()));
    item.insert("event_id".into(), text(d.event_id.to_string()));
    item.insert("event".into(), text(&d.event));
    item.insert("status".into(), text(d.status.as_str()));
    item.insert("attempt_count".into(), number(i64::from(d.attempt_count)));
    if let Some(code) = d.last_status_code {
        item.insert("last_status_code".into(), number(i64::from(code)));
    }
    put_optional(&mut item, "last_error", d.last_error.clone());
    put_optional(&mut item, "next_attempt_at", d.next_attempt_at.map(rfc3339));
    put_optional(&mut item, "lease_until", d.lease_until.map(rfc3339));
    item.insert("created_at".into(), text(rfc3339(d.created_at)));
    item.insert("updated_at".into(), text(rfc3339(d.updated_at)));
    item.insert(VERSION.into(), number(d.version));
    item
}

pub(super) const PAYLOAD: &str = "payload";

/// What a transition may change; everything else about a delivery is fixed at creation. The
/// search keys but `SEARCH_SK` never change: written again with the same value they cost no
/// index write, and a delivery written before the search indexes enters them at its next
/// transition.
const STATE: &[&str] = &[
    GSI1_PK,
    GSI1_SK,
    SEARCH_TENANT_PK,
    SEARCH_EVENT_PK,
    SEARCH_WEBHOOK_PK,
    SEARCH_WEBHOOK_EVENT_PK,
    SEARCH_SK,
    TTL,
    "status",
    "attempt_count",
    "last_status_code",
    "last_error",
    "next_attempt_at",
    "lease_until",
    "updated_at",
    VERSION,
];

/// The state attributes of `d`: a value to set, or `None` to remove.
pub(super) fn delivery_state(
    d: &Delivery,
    retention: Retention,
) -> Vec<(&'static str, Option<AttributeValue>)> {
    let mut item = delivery_item(d, retention);
    STATE
        .iter()
        .map(|name| (*name, item.remove(*name)))
        .collect()
}

pub(super) fn payload_item(p: &EventPayload, retention: Retention) -> Item {
    let mut item = key(tenant_pk(p.tenant_id), event_payload_sk(p.event_id));
    item.insert(PAYLOAD.into(), text(&*p.body));
    item.insert(
        TTL.into(),
        number(retention.payload_expiry(p.created_at).timestamp()),
    );
    item
}

/// The sort key of a stored item, if it has one.
pub(super) fn sk_of(item: &Item) -> Option<&str> {
    match item.get(SK) {
        Some(AttributeValue::S(sk)) => Some(sk),
        _ => None,
    }
}

/// The attributes of a delivery item that make its summary: a read that projects these never
/// returns a payload, not even one kept inline by a delivery written before the split.
const SUMMARY: &[&str] = &[
    "id",
    "tenant_id",
    "webhook_id",
    "event_id",
    "event",
    "status",
    "attempt_count",
    "last_status_code",
    "last_error",
    "next_attempt_at",
    "lease_until",
    "created_at",
    "updated_at",
    VERSION,
];

/// The attributes of a delivery item the sweeper reads.
const DUE: &[&str] = &[
    "id",
    "tenant_id",
    "status",
    "next_attempt_at",
    "lease_until",
    "updated_at",
    VERSION,
];

/// A `ProjectionExpression` of the summary's attributes and the names it uses (`#d0`, …).
pub(super) fn summary_projection() -> (String, Vec<(String, &'static str)>) {
    projection(SUMMARY)
}

/// A `ProjectionExpression` of the sweeper's attributes and the names it uses (`#d0`, …).
pub(super) fn due_projection() -> (String, Vec<(String, &'static str)>) {
    projection(DUE)
}

fn projection(attributes: &[&'static str]) -> (String, Vec<(String, &'static str)>) {
    let names: Vec<(String, &str)> = attributes
        .iter()
        .enumerate()
        .map(|(index, name)| (format!("#d{index}"), *name))
        .collect();
    let expression = names
        .iter()
        .map(|(placeholder, _)| placeholder.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    (expression, names)
}

/// A delivery's summary from its item (whatever else the item holds).
pub(super) fn summary_from_item(item: &Item) -> Result<DeliverySummary> {
    Ok(DeliverySummary {
        id: uuid_of(item, "id")?,
        tenant_id: uuid_of(item, "tenant_id")?,
        webhook_id: uuid_of(item, "webhook_id")?,
        event_id: uuid_of(item, "event_id")?,
        event: text_of(item, "event")?.to_owned(),
        status: DeliveryStatus::parse(text_of(item, "status")?).ok_or_else(|| corrupt("status"))?,
        attempt_count: number_of(item, "attempt_count")?,
        last_status_code: optional_number(item, "last_status_code")?,
        last_error: optional_text(item, "last_error"),
        next_attempt_at: optional_time(item, "next_attempt_at")?,
        lease_until: optional_time(item, "lease_until")?,
        created_at: time_of(item, "created_at")?,
        updated_at: time_of(item, "updated_at")?,
        version: number_of(item, VERSION)?,
    })
}

/// What the sweeper reads of a delivery, from its item.
pub(super) fn due_from_item(item: &Item) -> Result<DueDelivery> {
    Ok(DueDelivery {
        tenant_id: uuid_of(item, "tenant_id")?,
        id: uuid_of(item, "id")?,
        status: DeliveryStatus::parse(text_of(item, "status")?).ok_or_else(|| corrupt("status"))?,
        next_attempt_at: optional_time(item, "next_attempt_at")?,
        lease_until: optional_time(item, "lease_until")?,
        updated_at: time_of(item, "updated_at")?,
        version: number_of(item, VERSION)?,
    })
}

/// A delivery from its item and, unless the item holds it inline (written before the split),
/// its payload item's `payload`.
pub(super) fn delivery_from_item(item: &Item, payload: Option<&Item>) -> Result<Delivery> {
    let payload = optional_text(item, PAYLOAD)
        .or_else(|| payload.and_then(|p| optional_text(p, PAYLOAD)))
        .ok_or_else(|| corrupt(PAYLOAD))?;
    Ok(summary_from_item(item)?.with_payload(payload))
}

pub(super) fn attempt_item(d: &Delivery, a: &Attempt, retention: Retention) -> Item {
    let mut item = key(
        tenant_pk(d.tenant_id),
        format!("{}{:04}", attempt_prefix(d.id), a.number),
    );
    item.insert("number".into(), number(i64::from(a.number)));
    item.insert("at".into(), text(rfc3339(a.at)));
    if let Some(code) = a.status_code {
        item.insert("status_code".into(), number(i64::from(code)));
    }
    item.insert(
        "duration_ms".into(),
        number(i64::try_from(a.duration_ms).unwrap_or(i64::MAX)),
    );
    put_optional(&mut item, "error", a.error.clone());
    item.insert("response_body".into(), text(&a.response_body));
    item.insert(TTL.into(), number(retention.expiry(a.at).timestamp()));
    item
}

pub(super) fn attempt_from_item(item: &Item) -> Result<Attempt> {
    Ok(Attempt {
        number: number_of(item, "number")?,
        at: time_of(item, "at")?,
        status_code: optional_number(item, "status_code")?,
        duration_ms: number_of(item, "duration_ms")?,
        error: optional_text(item, "error"),
        response_body: optional_text(item, "response_body").unwrap_or_default(),
    })
}

/// Counts per status from a counts item (absent statuses are zero).
pub(super) fn delivery_counts_from_item(item: &Item) -> Result<StatusCounts> {
    let mut counts = BTreeMap::new();
    for status in DeliveryStatus::ALL {
        if let Some(count) = optional_number::<i64>(item, status_counter_name(status))? {
            counts.insert(status, count);
        }
    }
    Ok(StatusCounts(counts))
}
