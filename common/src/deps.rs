//! Everything a use case may touch, built once per process (per Lambda container).

use std::sync::Arc;

use crate::ports::{Clock, Store, SystemClock};

#[derive(Clone)]
pub struct Deps {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
}

impl Deps {
    pub fn new(store: Arc<dyn Store>) -> Deps {
        Deps {
            store,
            clock: Arc::new(SystemClock),
        }
    }
}
