//! The bodies of the client routes: how each reads into its command, and how the OpenAPI
//! document describes it, from the constants the domain's rules use.

use super::super::fields::{one_of, read_time, Fields, TIME_MESSAGE};
use super::query_param;
use crate::domain::client::{
    ClientFields, ClientPatch, COMPANY_MAX, EMAIL_MAX, EXTERNAL_ID_MAX, NAME_MAX, PHONE_MARKS,
    PHONE_MAX, PHONE_MIN_DIGITS,
};
use crate::domain::page::PageRequest;
use crate::domain::stale_clients::StaleQuery;
use crate::domain::sync_status::SyncStatus;
use crate::domain::validation::FieldErrors;
use crate::error::{Error, Result};
use crate::http::schema;
use crate::json_body::parse_json;
use crate::ports::ClientQuery;
use crate::service::input::Input;

/// `GET /api/clients?syncStatus=&syncedBefore=&limit=&cursor=`: the query string as sent.
pub struct ListQuery<'a>(pub &'a str);

impl Input<ClientQuery> for ListQuery<'_> {
    fn read(self) -> Result<ClientQuery> {
        let param = |name| query_param(self.0, name);
        let mut errors = FieldErrors::default();
        let status = param("syncStatus").and_then(|text| {
            let status = SyncStatus::parse(&text);
            if status.is_none() {
                errors.fail(
                    "syncStatus",
                    one_of(&SyncStatus::ALL.map(SyncStatus::as_str)),
                );
            }
            status
        });
        let before = param("syncedBefore").and_then(|text| {
            let time = read_time(&text);
            if time.is_none() {
                errors.fail("syncedBefore", TIME_MESSAGE);
            }
            time
        });
        if status.is_some() && before.is_some() {
            errors.fail("syncedBefore", "cannot be combined with syncStatus");
        }
        let limit = param("limit").and_then(|text| {
            let limit = text.parse::<i64>().ok();
            if limit.is_none() {
                errors.fail("limit", "must be an integer");
            }
            limit
        });
        let cursor = param("cursor");
        // A stale list's cursor is its own (a time and an id); any other list's is an id.
        let synced_before = before.map(|before| {
            StaleQuery::new(
                before,
                cursor.as_deref(),
                ("syncedBefore", "cursor"),
                &mut errors,
            )
        });
        let id_cursor = cursor.filter(|_| synced_before.is_none());
        let page = PageRequest::new(limit, id_cursor.as_deref(), ("limit", "cursor"));
        let page = match page {
            Ok(page) => Some(page),
            Err(error) => {
                errors.absorb(error)?;
                None
            }
        };
        errors.finish()?;
        let page = page.ok_or_else(|| Error::internal("a page refused without details"))?;
        Ok(ClientQuery {
            status,
            synced_before,
            page,
        })
    }
}

/// `POST /api/clients`.
pub struct CreateBody<'a>(pub &'a [u8]);

impl Input<ClientFields> for CreateBody<'_> {
    fn read(self) -> Result<ClientFields> {
        let body = parse_json(self.0)?;
        let mut fields = Fields::of(&body)?;
        let name = fields.required_string("name");
        let client = ClientFields {
            name: name.unwrap_or_default(),
            email: fields.optional_string("email"),
            company: fields.optional_string("company"),
            phone: fields.optional_string("phone"),
            external_id: fields.optional_string("externalId"),
        };
        fields.command(Some(client))
    }
}

/// `PATCH /api/clients/{id}`: absent leaves a field alone, null clears it; the name may not be
/// null.
pub struct UpdateBody<'a>(pub &'a [u8]);

impl Input<ClientPatch> for UpdateBody<'_> {
    fn read(self) -> Result<ClientPatch> {
        let body = parse_json(self.0)?;
        let mut fields = Fields::of(&body)?;
        let patch = ClientPatch {
            name: fields.present_string("name"),
            email: fields.nullable_string("email"),
            company: fields.nullable_string("company"),
            phone: fields.nullable_string("phone"),
            external_id: fields.nullable_string("externalId"),
        };
        fields.command(Some(patch))
    }
}

/// `POST /api/clients`: a new client's fields.
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

/// `PATCH /api/clients/{id}`: the fields to change; null clears a field.
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

/// `is_plausible_phone` after trimming: an optional leading `+`, then at least
/// `PHONE_MIN_DIGITS` digits among `PHONE_MARKS`.
fn phone_schema() -> utoipa::openapi::Object {
    schema::nullable(
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .max_length(Some(PHONE_MAX))
            .pattern(Some(phone_pattern())),
    )
}

fn phone_pattern() -> String {
    let ws = format!("[{}]*", schema::WHITE_SPACE);
    let marks = schema::class_of(PHONE_MARKS);
    format!(r"^{ws}\+?[{marks}]*(?:[0-9][{marks}]*){{{PHONE_MIN_DIGITS},}}{ws}$")
}

fn external_id_schema() -> utoipa::openapi::Object {
    schema::nullable(schema::text(EXTERNAL_ID_MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::client::is_plausible_phone;
    use crate::http::fields::details;

    fn create(body: &[u8]) -> Result<ClientFields> {
        CreateBody(body).read()
    }

    fn update(body: &[u8]) -> Result<ClientPatch> {
        UpdateBody(body).read()
    }

    #[test]
    fn a_patch_cannot_null_the_name_or_set_the_status() {
        let found = details(update(br#"{"name": null, "syncStatus": "SYNCED"}"#));
        assert_eq!(found["name"], "is required");
        assert_eq!(found["syncStatus"], "is not a known field");
        let patch = update(br#"{"email": null}"#).unwrap();
        assert_eq!(patch.email, Some(None));
        assert_eq!(patch.name, None);
    }

    #[test]
    fn a_create_body_names_each_field_of_the_wrong_shape() {
        let found = details(create(br#"{"externalId": 7}"#));
        assert_eq!(found["name"], "is required");
        assert_eq!(found["externalId"], "must be a string");
    }

    /// The phone pattern, written from `PHONE_MARKS` and `PHONE_MIN_DIGITS`, agrees with
    /// `is_plausible_phone` on the edge cases.
    #[test]
    fn the_phone_pattern_says_what_the_domain_accepts() {
        let pattern = fancy_regex::Regex::new(&phone_pattern()).unwrap();
        for phone in [
            "+44 (20) 7946-0958",
            "123",
            "1.2.3",
            "12",
            "+",
            "1+23456",
            "555-CALL",
            "(12)",
            "++123",
            "1_23",
        ] {
            assert_eq!(
                pattern.is_match(phone).unwrap(),
                is_plausible_phone(phone),
                "{phone}"
            );
        }
    }
}
