//! The queue conformance suite: the same tests on the embedded SQLite queue and on SQS (moto).

use std::time::{Duration, Instant};

use common::ports::{DeliveryMessage, DeliveryRef, QueueMessage, RetryFailedMessage, RetryScope};
use uuid::Uuid;

use crate::support::{fresh_store, Backend, TEST_VISIBILITY};

crate::on_both_stores!(
    messages_round_trip_and_deleted_ones_stay_gone,
    a_delayed_message_waits_for_its_delay,
    an_undeleted_message_comes_back_after_the_visibility_timeout,
    batches_larger_than_ten_are_sent_whole,
);

fn message() -> QueueMessage {
    QueueMessage::Delivery(DeliveryMessage {
        tenant_id: Uuid::now_v7(),
        delivery_id: Uuid::now_v7(),
        webhook_id: None,
        retry: false,
        resend_of: None,
        send_slot: None,
    })
}

/// Every kind of message the worker takes.
fn message_of_kind(n: usize) -> QueueMessage {
    let tenant_id = Uuid::now_v7();
    match n % 4 {
        0 => message(),
        1 => QueueMessage::Delivery(DeliveryMessage {
            tenant_id,
            delivery_id: Uuid::now_v7(),
            webhook_id: None,
            retry: true,
            resend_of: None,
            send_slot: None,
        }),
        2 => QueueMessage::RetryFailed(RetryFailedMessage {
            tenant_id,
            retry_failed: RetryScope {
                webhook_id: None,
                after: None,
            },
        }),
        _ => QueueMessage::RetryFailed(RetryFailedMessage {
            tenant_id,
            retry_failed: RetryScope {
                webhook_id: Some(Uuid::now_v7()),
                after: Some(DeliveryRef {
                    webhook_id: Uuid::now_v7(),
                    delivery_id: Uuid::now_v7(),
                }),
            },
        }),
    }
}

fn parse(body: &str) -> QueueMessage {
    serde_json::from_str(body).unwrap()
}

async fn messages_round_trip_and_deleted_ones_stay_gone(backend: Backend) {
    let fixture = fresh_store(backend).await;
    let queue = std::sync::Arc::clone(&fixture.queue);
    let sent = message();
    queue.send(&[(sent.clone(), Duration::ZERO)]).await.unwrap();
    let received = queue.receive(10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(parse(&received[0].body), sent);
    assert_eq!(received[0].receive_count, 1);
    queue.delete(&received[0].receipt).await.unwrap();
    tokio::time::sleep(TEST_VISIBILITY + Duration::from_millis(500)).await;
    let again = queue.receive(10, Duration::from_secs(1)).await.unwrap();
    assert!(again.is_empty(), "a deleted message never comes back");
}

async fn a_delayed_message_waits_for_its_delay(backend: Backend) {
    let fixture = fresh_store(backend).await;
    let queue = std::sync::Arc::clone(&fixture.queue);
    let sent = message();
    let start = Instant::now();
    queue
        .send(&[(sent.clone(), Duration::from_secs(2))])
        .await
        .unwrap();
    let early = queue.receive(10, Duration::from_millis(500)).await.unwrap();
    assert!(early.is_empty(), "not visible during its delay");
    let mut received = Vec::new();
    while received.is_empty() && start.elapsed() < Duration::from_secs(10) {
        received = queue.receive(10, Duration::from_secs(5)).await.unwrap();
    }
    assert_eq!(received.len(), 1);
    assert_eq!(parse(&received[0].body), sent);
    assert!(
        start.elapsed() >= Duration::from_millis(1_950),
        "{:?}",
        start.elapsed()
    );
}

async fn an_undeleted_message_comes_back_after_the_visibility_timeout(backend: Backend) {
    let fixture = fresh_store(backend).await;
    let queue = std::sync::Arc::clone(&fixture.queue);
    let sent = message();
    queue.send(&[(sent.clone(), Duration::ZERO)]).await.unwrap();
    let first = queue.receive(10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(first.len(), 1);
    let hidden = queue.receive(10, Duration::from_millis(500)).await.unwrap();
    assert!(hidden.is_empty(), "invisible while a consumer holds it");
    // The consumer "crashes": it never deletes. The message is delivered again.
    let mut second = Vec::new();
    let start = Instant::now();
    while second.is_empty() && start.elapsed() < TEST_VISIBILITY * 3 {
        second = queue.receive(10, Duration::from_secs(5)).await.unwrap();
    }
    assert_eq!(second.len(), 1);
    assert_eq!(parse(&second[0].body), sent);
    assert_eq!(second[0].receive_count, 2);
    queue.delete(&second[0].receipt).await.unwrap();
}

async fn batches_larger_than_ten_are_sent_whole(backend: Backend) {
    let fixture = fresh_store(backend).await;
    let queue = std::sync::Arc::clone(&fixture.queue);
    let sent: Vec<QueueMessage> = (0..23).map(message_of_kind).collect();
    let batch: Vec<_> = sent.iter().map(|m| (m.clone(), Duration::ZERO)).collect();
    queue.send(&batch).await.unwrap();
    let mut received = Vec::new();
    let start = Instant::now();
    while received.len() < sent.len() && start.elapsed() < Duration::from_secs(15) {
        for message in queue.receive(10, Duration::from_secs(2)).await.unwrap() {
            queue.delete(&message.receipt).await.unwrap();
            received.push(parse(&message.body));
        }
    }
    received.sort_by_key(|m| format!("{m:?}"));
    let mut expected = sent;
    expected.sort_by_key(|m| format!("{m:?}"));
    assert_eq!(received, expected);
}

/// The embedded queue lives in the store's file: what was accepted survives a restart.
#[tokio::test]
async fn the_embedded_queue_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let sent = message();
    {
        let store = common::adapters::sqlite::SqliteStore::open(dir.path()).unwrap();
        let queue = store.queue(TEST_VISIBILITY);
        common::ports::Queue::send(&queue, &[(sent.clone(), Duration::ZERO)])
            .await
            .unwrap();
        // Received but never deleted: the process dies holding it.
        let held = common::ports::Queue::receive(&queue, 1, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(held.len(), 1);
    }
    let store = common::adapters::sqlite::SqliteStore::open(dir.path()).unwrap();
    let queue = store.queue(TEST_VISIBILITY);
    assert_eq!(queue.len().await.unwrap(), 1);
    // The restarted process releases what the dead one held, at once.
    assert_eq!(queue.release_unacknowledged().await.unwrap(), 1);
    let again = common::ports::Queue::receive(&queue, 1, Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(parse(&again[0].body), sent);
    assert_eq!(again[0].receive_count, 2);
}
