//! Clients of a tenant and the rules for creating and changing them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::sync_status::{SyncStatus, SyncStatusUpdate};
use super::validation::FieldErrors;
use crate::error::Result;

pub const NAME_MAX: usize = 200;
pub const COMPANY_MAX: usize = 200;
pub const EMAIL_MAX: usize = 254;
pub const PHONE_MAX: usize = 32;
pub const EXTERNAL_ID_MAX: usize = 128;
/// What a phone number holds besides its digits (and a leading `+`).
pub const PHONE_MARKS: &str = " ()-.";
/// The fewest digits a phone number has.
pub const PHONE_MIN_DIGITS: usize = 3;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Client {
    pub id: Uuid,
    #[serde(skip)]
    pub tenant_id: Uuid,
    pub name: String,
    pub email: Option<String>,
    pub company: Option<String>,
    pub phone: Option<String>,
    pub external_id: Option<String>,
    pub sync_status: SyncStatus,
    #[serde(serialize_with = "crate::time::serde_millis::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::time::serde_millis::serialize")]
    pub updated_at: DateTime<Utc>,
    /// When a sync job last reported the client `SYNCED`.
    #[serde(serialize_with = "crate::time::serde_millis::option::serialize")]
    pub last_synced_at: Option<DateTime<Utc>>,
    /// When a sync job last reported an attempt's outcome (`SYNCED` or `FAILED`).
    #[serde(serialize_with = "crate::time::serde_millis::option::serialize")]
    pub last_sync_attempt_at: Option<DateTime<Utc>>,
    /// Why the last sync failed, as reported with `FAILED`; cleared by `SYNCED`.
    pub last_sync_error: Option<String>,
    pub last_sync_error_code: Option<String>,
    /// Bumped by every write; writes are conditional on the version they read.
    #[serde(skip)]
    pub version: i64,
}

/// The editable fields of a client: a new client's command, checked by `validated`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientFields {
    pub name: String,
    pub email: Option<String>,
    pub company: Option<String>,
    pub phone: Option<String>,
    pub external_id: Option<String>,
}

/// A PATCH: `None` leaves a field alone, `Some(None)` clears an optional one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientPatch {
    pub name: Option<String>,
    pub email: Option<Option<String>>,
    pub company: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub external_id: Option<Option<String>>,
}

impl ClientFields {
    /// The fields once each follows its rule: texts trimmed, the email and phone plausible.
    pub fn validated(self) -> Result<ClientFields> {
        let mut errors = FieldErrors::default();
        let name = errors.text("name", &self.name, NAME_MAX);
        let email = optional_text(&mut errors, "email", self.email, EMAIL_MAX);
        let company = optional_text(&mut errors, "company", self.company, COMPANY_MAX);
        let phone = optional_text(&mut errors, "phone", self.phone, PHONE_MAX);
        let external_id =
            optional_text(&mut errors, "externalId", self.external_id, EXTERNAL_ID_MAX);
        check_contact_formats(&mut errors, email.as_deref(), phone.as_deref());
        errors.finish()?;
        Ok(ClientFields {
            name: name.unwrap_or_default(),
            email,
            company,
            phone,
            external_id,
        })
    }
}

impl ClientPatch {
    /// The patch once each field it sets follows its rule (as in `ClientFields::validated`).
    pub fn validated(self) -> Result<ClientPatch> {
        let mut errors = FieldErrors::default();
        let name = self
            .name
            .map(|name| errors.text("name", &name, NAME_MAX).unwrap_or_default());
        let mut cleared = |name: &str, value: Option<Option<String>>, max: usize| {
            value.map(|value| optional_text(&mut errors, name, value, max))
        };
        let email = cleared("email", self.email, EMAIL_MAX);
        let company = cleared("company", self.company, COMPANY_MAX);
        let phone = cleared("phone", self.phone, PHONE_MAX);
        let external_id = cleared("externalId", self.external_id, EXTERNAL_ID_MAX);
        check_contact_formats(
            &mut errors,
            email.clone().flatten().as_deref(),
            phone.clone().flatten().as_deref(),
        );
        errors.finish()?;
        Ok(ClientPatch {
            name,
            email,
            company,
            phone,
            external_id,
        })
    }
}

fn optional_text(
    errors: &mut FieldErrors,
    name: &str,
    value: Option<String>,
    max: usize,
) -> Option<String> {
    value.and_then(|text| errors.text(name, &text, max))
}

fn check_contact_formats(errors: &mut FieldErrors, email: Option<&str>, phone: Option<&str>) {
    if email.is_some_and(|email| !is_plausible_email(email)) {
        errors.fail("email", "must be an email address");
    }
    if phone.is_some_and(|phone| !is_plausible_phone(phone)) {
        errors.fail(
            "phone",
            "must be a phone number: digits, spaces, and + ( ) - . only",
        );
    }
}

/// One `@`, a non-empty local part, a dotted domain, no spaces: what a CRM would accept.
pub fn is_plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && !email.chars().any(char::is_whitespace)
        && domain.split('.').count() >= 2
        && domain.split('.').all(|label| !label.is_empty())
}

pub fn is_plausible_phone(phone: &str) -> bool {
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    digits >= PHONE_MIN_DIGITS
        && phone
            .chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_digit() || PHONE_MARKS.contains(c) || (c == '+' && i == 0))
}

impl Client {
    /// A new client waits for its first sync: `NEEDS_UPDATE`.
    pub fn new(tenant_id: Uuid, fields: ClientFields, now: DateTime<Utc>) -> Client {
        Client {
            id: Uuid::now_v7(),
            tenant_id,
            name: fields.name,
            email: fields.email,
            company: fields.company,
            phone: fields.phone,
            external_id: fields.external_id,
            sync_status: SyncStatus::NeedsUpdate,
            created_at: now,
            updated_at: now,
            last_synced_at: None,
            last_sync_attempt_at: None,
            last_sync_error: None,
            last_sync_error_code: None,
            version: 1,
        }
    }

    /// The client after a PATCH, or `None` when nothing would change. A changed client needs
    /// to be synced again, so it becomes `NEEDS_UPDATE`.
    pub fn patched(&self, patch: &ClientPatch, now: DateTime<Utc>) -> Option<Client> {
        let mut next = self.clone();
        if let Some(name) = &patch.name {
            next.name = name.clone();
        }
        for (field, value) in [
            (&mut next.email, &patch.email),
            (&mut next.company, &patch.company),
            (&mut next.phone, &patch.phone),
            (&mut next.external_id, &patch.external_id),
        ] {
            if let Some(value) = value {
                field.clone_from(value);
            }
        }
        if next == *self {
            return None;
        }
        next.sync_status = SyncStatus::NeedsUpdate;
        next.updated_at = now;
        next.version += 1;
        Some(next)
    }

    /// The client after a sync job's report, or `None` when it records nothing new.
    /// `SYNCED` and `FAILED` are the outcomes of an attempt: each is recorded (its time, and
    /// the failure's reason or the sync's time) even when the status stays the same, as a
    /// job retrying a client reports it again. `PENDING` and `NEEDS_UPDATE` only move the
    /// status, and keep the last failure's reason for whoever looks at a pending retry.
    pub fn after_sync_report(
        &self,
        update: &SyncStatusUpdate,
        now: DateTime<Utc>,
    ) -> Option<Client> {
        let mut next = self.clone();
        next.sync_status = update.status;
        match update.status {
            SyncStatus::Synced => {
                next.last_synced_at = Some(now);
                next.last_sync_attempt_at = Some(now);
                next.last_sync_error = None;
                next.last_sync_error_code = None;
            }
            SyncStatus::Failed => {
                next.last_sync_attempt_at = Some(now);
                next.last_sync_error.clone_from(&update.error);
                next.last_sync_error_code.clone_from(&update.error_code);
            }
            SyncStatus::Pending | SyncStatus::NeedsUpdate
                if next.sync_status == self.sync_status =>
            {
                return None;
            }
            SyncStatus::Pending | SyncStatus::NeedsUpdate => {}
        }
        next.updated_at = now;
        next.version += 1;
        Some(next)
    }

    /// The client in a new sync status with no failure reason (see `after_sync_report`).
    pub fn with_status(&self, status: SyncStatus, now: DateTime<Utc>) -> Option<Client> {
        let update = SyncStatusUpdate {
            client_id: self.id,
            status,
            error: None,
            error_code: None,
        };
        self.after_sync_report(&update, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    fn details(error: Error) -> std::collections::BTreeMap<String, String> {
        match error {
            Error::Invalid { details, .. } => details,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    fn sample() -> Client {
        let fields = ClientFields {
            name: " Ada ".to_owned(),
            email: Some("ada@example.com".to_owned()),
            ..ClientFields::default()
        }
        .validated()
        .expect("valid fields");
        assert_eq!(fields.name, "Ada");
        Client::new(Uuid::now_v7(), fields, Utc::now())
    }

    #[test]
    fn a_new_client_needs_an_update() {
        let client = sample();
        assert_eq!(client.sync_status, SyncStatus::NeedsUpdate);
        assert_eq!(client.last_synced_at, None);
        assert_eq!(client.email.as_deref(), Some("ada@example.com"));
    }

    #[test]
    fn rejects_bad_contact_fields() {
        let fields = ClientFields {
            name: String::new(),
            email: Some("not-an-email".to_owned()),
            phone: Some("call me".to_owned()),
            external_id: Some("\u{200b}".to_owned()),
            ..ClientFields::default()
        };
        let details = details(fields.validated().unwrap_err());
        assert_eq!(details["name"], "must not be empty");
        assert_eq!(details["email"], "must be an email address");
        assert!(details["phone"].starts_with("must be a phone number"));
        assert_eq!(details["externalId"], "must have a visible character");
    }

    #[test]
    fn emails_and_phones() {
        assert!(is_plausible_email("a.b+c@mail.example.org"));
        for bad in ["a@b", "@b.com", "a@@b.com", "a b@c.com", "a@.com", "a@b."] {
            assert!(!is_plausible_email(bad), "{bad}");
        }
        assert!(is_plausible_phone("+44 (20) 7946-0958"));
        for bad in ["12", "+", "1+23456", "555-CALL"] {
            assert!(!is_plausible_phone(bad), "{bad}");
        }
    }

    #[test]
    fn patch_changes_fields_and_marks_needs_update() {
        let synced = sample()
            .with_status(SyncStatus::Synced, Utc::now())
            .unwrap();
        let patch = ClientPatch {
            company: Some(Some(" Analytical Engines".to_owned())),
            email: Some(None),
            ..ClientPatch::default()
        }
        .validated()
        .unwrap();
        let next = synced.patched(&patch, Utc::now()).expect("a change");
        assert_eq!(next.company.as_deref(), Some("Analytical Engines"));
        assert_eq!(next.email, None);
        assert_eq!(next.sync_status, SyncStatus::NeedsUpdate);
        assert_eq!(next.version, synced.version + 1);
    }

    #[test]
    fn a_patch_that_changes_nothing_is_no_write() {
        let client = sample();
        let patch = ClientPatch {
            name: Some("Ada".to_owned()),
            ..ClientPatch::default()
        };
        assert_eq!(client.patched(&patch, Utc::now()), None);
    }

    #[test]
    fn becoming_synced_records_the_sync_time() {
        let now = Utc::now();
        let next = sample().with_status(SyncStatus::Synced, now).unwrap();
        assert_eq!(next.last_synced_at, Some(now));
        assert_eq!(next.last_sync_attempt_at, Some(now));
        let later = now + chrono::Duration::seconds(1);
        let again = next
            .with_status(SyncStatus::Synced, later)
            .expect("a new sync");
        assert_eq!(again.last_synced_at, Some(later));
    }

    fn failure(error: Option<&str>, code: Option<&str>) -> SyncStatusUpdate {
        SyncStatusUpdate {
            client_id: Uuid::now_v7(),
            status: SyncStatus::Failed,
            error: error.map(str::to_owned),
            error_code: code.map(str::to_owned),
        }
    }

    #[test]
    fn a_failure_keeps_its_reason_until_a_sync() {
        let now = Utc::now();
        let synced = sample().with_status(SyncStatus::Synced, now).unwrap();
        let failed = synced
            .after_sync_report(&failure(Some("timeout"), Some("E1")), now)
            .unwrap();
        assert_eq!(failed.last_sync_error.as_deref(), Some("timeout"));
        assert_eq!(failed.last_sync_error_code.as_deref(), Some("E1"));
        assert_eq!(failed.last_synced_at, Some(now));
        let pending = failed.with_status(SyncStatus::Pending, now).unwrap();
        assert_eq!(pending.last_sync_error.as_deref(), Some("timeout"));
        assert_eq!(pending.with_status(SyncStatus::Pending, now), None);
        let synced = pending.with_status(SyncStatus::Synced, now).unwrap();
        assert_eq!(synced.last_sync_error, None);
        assert_eq!(synced.last_sync_error_code, None);
    }

    #[test]
    fn a_repeated_failure_records_its_new_reason() {
        let now = Utc::now();
        let failed = sample()
            .after_sync_report(&failure(Some("a"), None), now)
            .unwrap();
        let later = now + chrono::Duration::seconds(1);
        let again = failed
            .after_sync_report(&failure(None, Some("B")), later)
            .unwrap();
        assert_eq!(again.sync_status, SyncStatus::Failed);
        assert_eq!(again.last_sync_error, None);
        assert_eq!(again.last_sync_error_code.as_deref(), Some("B"));
        assert_eq!(again.last_sync_attempt_at, Some(later));
    }
}
