//! Clients of a tenant and the rules for creating and changing them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::sync_status::SyncStatus;
use super::validation::{schema, Fields};
use crate::error::Result;

const NAME_MAX: usize = 200;
const COMPANY_MAX: usize = 200;
const EMAIL_MAX: usize = 254;
const PHONE_MAX: usize = 32;
const EXTERNAL_ID_MAX: usize = 128;

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
    #[serde(serialize_with = "crate::time::serde_millis::option::serialize")]
    pub last_synced_at: Option<DateTime<Utc>>,
    /// Bumped by every write; writes are conditional on the version they read.
    #[serde(skip)]
    pub version: i64,
}

/// `POST /api/clients`: the body `ClientFields::parse` accepts, for the OpenAPI document.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"name": "Ada Lovelace", "email": "ada@example.com", "company": "Analytical Engines", "phone": "+44 20 7946 0958", "externalId": "crm-1815"}))]
#[allow(dead_code)] // a description of the body, never built
pub struct CreateClientRequest {
    #[schema(schema_with = name_schema)]
    name: String,
    #[schema(schema_with = email_schema)]
    email: Option<String>,
    #[schema(schema_with = company_schema)]
    company: Option<String>,
    #[schema(schema_with = phone_schema)]
    phone: Option<String>,
    #[schema(schema_with = external_id_schema)]
    external_id: Option<String>,
}

/// `PATCH /api/clients/{id}`: the body `ClientPatch::parse` accepts; null clears a field.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"company": "Analytical Engines Ltd", "phone": null}))]
#[allow(dead_code)] // a description of the body, never built
pub struct UpdateClientRequest {
    #[schema(schema_with = name_schema)]
    name: Option<String>,
    #[schema(schema_with = email_schema)]
    email: Option<String>,
    #[schema(schema_with = company_schema)]
    company: Option<String>,
    #[schema(schema_with = phone_schema)]
    phone: Option<String>,
    #[schema(schema_with = external_id_schema)]
    external_id: Option<String>,
}

fn name_schema() -> utoipa::openapi::Object {
    schema::text(NAME_MAX).build()
}

fn email_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::{schema::SchemaFormat, KnownFormat};
    schema::nullable(
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
            .max_length(Some(EMAIL_MAX)),
    )
}

fn company_schema() -> utoipa::openapi::Object {
    schema::nullable(schema::text(COMPANY_MAX))
}

/// `is_plausible_phone` after trimming: an optional leading `+`, then at least 3 digits among
/// spaces, parentheses, dashes and dots.
fn phone_schema() -> utoipa::openapi::Object {
    let ws = r"[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*";
    schema::nullable(
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .max_length(Some(PHONE_MAX))
            .pattern(Some(format!(
                r"^{ws}\+?[ ().-]*(?:[0-9][ ().-]*){{3,}}{ws}$"
            ))),
    )
}

fn external_id_schema() -> utoipa::openapi::Object {
    schema::nullable(schema::text(EXTERNAL_ID_MAX))
}

/// The editable fields of a client, validated.
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
    pub fn parse(body: &Value) -> Result<ClientFields> {
        let mut fields = Fields::of(body)?;
        let name = fields.required_string("name", NAME_MAX);
        let email = fields.optional_string("email", EMAIL_MAX);
        let company = fields.optional_string("company", COMPANY_MAX);
        let phone = fields.optional_string("phone", PHONE_MAX);
        let external_id = fields.optional_string("externalId", EXTERNAL_ID_MAX);
        check_contact_formats(&mut fields, email.as_deref(), phone.as_deref());
        fields.finish()?;
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
    pub fn parse(body: &Value) -> Result<ClientPatch> {
        let mut fields = Fields::of(body)?;
        let name = if fields.has("name") {
            fields.required_string("name", NAME_MAX)
        } else {
            fields.optional_string("name", NAME_MAX)
        };
        let email = fields.nullable_string("email", EMAIL_MAX);
        let company = fields.nullable_string("company", COMPANY_MAX);
        let phone = fields.nullable_string("phone", PHONE_MAX);
        let external_id = fields.nullable_string("externalId", EXTERNAL_ID_MAX);
        check_contact_formats(
            &mut fields,
            email.clone().flatten().as_deref(),
            phone.clone().flatten().as_deref(),
        );
        fields.finish()?;
        Ok(ClientPatch {
            name,
            email,
            company,
            phone,
            external_id,
        })
    }
}

fn check_contact_formats(fields: &mut Fields<'_>, email: Option<&str>, phone: Option<&str>) {
    if email.is_some_and(|email| !is_plausible_email(email)) {
        fields.fail("email", "must be an email address");
    }
    if phone.is_some_and(|phone| !is_plausible_phone(phone)) {
        fields.fail(
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
    digits >= 3
        && phone
            .chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_digit() || " ()-.".contains(c) || (c == '+' && i == 0))
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

    /// The client in a new sync status, or `None` when it already is in that status.
    pub fn with_status(&self, status: SyncStatus, now: DateTime<Utc>) -> Option<Client> {
        if self.sync_status == status {
            return None;
        }
        let mut next = self.clone();
        next.sync_status = status;
        next.updated_at = now;
        if status == SyncStatus::Synced {
            next.last_synced_at = Some(now);
        }
        next.version += 1;
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use serde_json::json;

    fn details(error: Error) -> std::collections::BTreeMap<String, String> {
        match error {
            Error::Invalid { details, .. } => details,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    fn sample() -> Client {
        let fields = ClientFields::parse(&json!({"name": "Ada", "email": "ada@example.com"}))
            .expect("valid fields");
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
        let body =
            json!({"name": "", "email": "not-an-email", "phone": "call me", "externalId": 7});
        let details = details(ClientFields::parse(&body).unwrap_err());
        assert_eq!(details["name"], "must not be empty");
        assert_eq!(details["email"], "must be an email address");
        assert!(details["phone"].starts_with("must be a phone number"));
        assert_eq!(details["externalId"], "must be a string");
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
        let patch =
            ClientPatch::parse(&json!({"company": "Analytical Engines", "email": null})).unwrap();
        let next = synced.patched(&patch, Utc::now()).expect("a change");
        assert_eq!(next.company.as_deref(), Some("Analytical Engines"));
        assert_eq!(next.email, None);
        assert_eq!(next.sync_status, SyncStatus::NeedsUpdate);
        assert_eq!(next.version, synced.version + 1);
    }

    #[test]
    fn a_patch_that_changes_nothing_is_no_write() {
        let client = sample();
        let patch = ClientPatch::parse(&json!({"name": "Ada"})).unwrap();
        assert_eq!(client.patched(&patch, Utc::now()), None);
    }

    #[test]
    fn patch_cannot_null_the_name_or_set_the_status() {
        let body = json!({"name": null, "syncStatus": "SYNCED"});
        let details = details(ClientPatch::parse(&body).unwrap_err());
        assert_eq!(details["name"], "is required");
        assert_eq!(details["syncStatus"], "is not a known field");
    }

    #[test]
    fn becoming_synced_records_the_sync_time() {
        let now = Utc::now();
        let next = sample().with_status(SyncStatus::Synced, now).unwrap();
        assert_eq!(next.last_synced_at, Some(now));
        assert_eq!(next.with_status(SyncStatus::Synced, now), None);
    }
}
