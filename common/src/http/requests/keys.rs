//! The body of `POST /api/keys`: how it reads into its command, and how the OpenAPI document
//! describes it.

use crate::domain::auth::{NewKey, Role, KEY_NAME_MAX};
use crate::error::Result;
use crate::http::fields::{one_of, Fields};
use crate::http::schema;
use crate::json_body::parse_json;
use crate::service::input::Input;

/// `POST /api/keys`.
pub struct CreateBody<'a>(pub &'a [u8]);

impl Input<NewKey> for CreateBody<'_> {
    fn read(self) -> Result<NewKey> {
        let body = parse_json(self.0)?;
        let mut fields = Fields::of(&body)?;
        let name = fields.required_string("name");
        let role = fields.required_string("role").and_then(|text| {
            let role = Role::parse(text.trim());
            if role.is_none() {
                fields.fail("role", one_of(&Role::ALL.map(Role::as_str)));
            }
            role
        });
        let expires_at = fields.optional_time("expiresAt");
        let key = name.zip(role).map(|(name, role)| NewKey {
            name,
            role,
            expires_at,
        });
        fields.command(key)
    }
}

/// `POST /api/keys`: a new key's name and role, and when it stops working if it should.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"name": "CRM connector", "role": "SALES_REP", "expiresAt": "2027-06-30T00:00:00.000Z"}))]
#[allow(dead_code)] // a description of the body, never built
pub struct CreateKeyRequest {
    #[schema(schema_with = key_name_schema)]
    name: String,
    role: Role,
    /// When the key stops authenticating (a 401 after it); must be in the future. Absent or
    /// null: the key works until it is deleted.
    #[schema(schema_with = schema::time)]
    expires_at: Option<String>,
}

fn key_name_schema() -> utoipa::openapi::Object {
    schema::text(KEY_NAME_MAX).build()
}
