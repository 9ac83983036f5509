//! One measuring layer for the stats and cost sections: calls through the `Store` port, and
//! the AWS requests and DynamoDB capacity units under it.

mod aws;
mod capacity;
mod store;

pub use aws::{AwsMeter, Metered};
pub use store::{CallCounts, CountingStore, PortCalls};

/// A per-call or per-delivery figure: whole numbers plain, others to two decimals.
pub fn figure(value: f64) -> String {
    if (value - value.round()).abs() < 0.005 {
        format!("{}", value.round())
    } else {
        format!("{value:.2}")
    }
}
