//! `GET /api/audit?since=&until=&action=&limit=&cursor=`: how the query string reads into a
//! page of the audit log.

use super::super::fields::{read_time, TIME_MESSAGE};
use super::query_param;
use crate::domain::page::PageRequest;
use crate::domain::validation::FieldErrors;
use crate::error::Result;
use crate::service::audit::AuditListing;
use crate::service::input::Input;

/// The query string as sent (a repeated parameter keeps its first value, as on every route).
pub struct ListQuery<'a>(pub &'a str);

impl Input<AuditListing> for ListQuery<'_> {
    fn read(self) -> Result<AuditListing> {
        let param = |name| query_param(self.0, name);
        let mut errors = FieldErrors::default();
        let mut time = |name: &str| {
            let text = query_param(self.0, name)?;
            let time = read_time(&text);
            if time.is_none() {
                errors.fail(name, TIME_MESSAGE);
            }
            time
        };
        let (since, until) = (time("since"), time("until"));
        let limit = param("limit").and_then(|text| {
            let limit = text.parse::<i64>().ok();
            if limit.is_none() {
                errors.fail("limit", "must be an integer");
            }
            limit
        });
        let page = PageRequest::new(limit, param("cursor").as_deref(), ("limit", "cursor"));
        let action = param("action");
        AuditListing::new(since, until, action.as_deref(), page, errors)
    }
}
