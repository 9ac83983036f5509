//! The event catalogue (`GET /api/webhooks/events`) and subscription patterns.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EventType {
    #[schema(value_type = String)]
    pub name: &'static str,
    #[schema(value_type = String)]
    pub description: &'static str,
}

const fn event(name: &'static str, description: &'static str) -> EventType {
    EventType { name, description }
}

pub const WEBHOOK_TEST: &str = "webhook.test";
/// The service's own operational events, about a webhook of the tenant.
pub const WEBHOOK_DISABLED: &str = "webhook.disabled";
pub const WEBHOOK_ENABLED: &str = "webhook.enabled";

/// Seed 000's four events, seed 003's CRM objects, the test event and the operational events.
pub static CATALOGUE: &[EventType] = &[
    event("client.created", "A client was created."),
    event("client.updated", "A client's fields changed."),
    event("client.deleted", "A client was deleted."),
    event("sync.status.changed", "A client's CRM sync status changed."),
    event("lead.created", "A lead was created."),
    event("lead.updated", "A lead was updated."),
    event("lead.deleted", "A lead was deleted."),
    event("lead.converted", "A lead was converted."),
    event("opportunity.created", "An opportunity was created."),
    event("opportunity.updated", "An opportunity was updated."),
    event("opportunity.deleted", "An opportunity was deleted."),
    event(
        "opportunity.stage_changed",
        "An opportunity moved to another stage.",
    ),
    event("account.created", "An account was created."),
    event("account.updated", "An account was updated."),
    event("account.deleted", "An account was deleted."),
    event("contact.created", "A contact was created."),
    event("contact.updated", "A contact was updated."),
    event("contact.deleted", "A contact was deleted."),
    event("activity.created", "An activity was created."),
    event("activity.updated", "An activity was updated."),
    event("activity.deleted", "An activity was deleted."),
    event(
        WEBHOOK_TEST,
        "A test delivery sent by POST /api/webhooks/{id}/test.",
    ),
    event(
        WEBHOOK_DISABLED,
        "The service deactivated a webhook of the tenant: every attempt failed for \
         WEBHOOK_DISABLE_AFTER_SECONDS, or it answered 410 Gone.",
    ),
    event(
        WEBHOOK_ENABLED,
        "A webhook the service had deactivated was enabled again.",
    ),
];

/// Events only the service sends: a notify may not send them.
pub fn is_service_event(name: &str) -> bool {
    [WEBHOOK_TEST, WEBHOOK_DISABLED, WEBHOOK_ENABLED].contains(&name)
}

pub fn is_known_event(name: &str) -> bool {
    CATALOGUE.iter().any(|event| event.name == name)
}

/// A subscription entry: an event name, `*`, or `prefix.*` that matches at least one event.
pub fn is_valid_pattern(pattern: &str) -> bool {
    pattern == "*"
        || is_known_event(pattern)
        || pattern
            .strip_suffix(".*")
            .filter(|prefix| !prefix.is_empty())
            .is_some_and(|prefix| {
                CATALOGUE
                    .iter()
                    .any(|event| event.name.starts_with(&format!("{prefix}.")))
            })
}

/// Whether a subscription entry covers an event. `webhook.test` is sent to one webhook on
/// request, never fanned out.
pub fn pattern_matches(pattern: &str, event: &str) -> bool {
    pattern == "*"
        || pattern == event
        || pattern.strip_suffix(".*").is_some_and(|prefix| {
            event.starts_with(prefix) && event[prefix.len()..].starts_with('.')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_has_every_seed_event_once() {
        for name in [
            "client.created",
            "client.updated",
            "client.deleted",
            "sync.status.changed",
            "lead.converted",
            "opportunity.stage_changed",
            "webhook.test",
        ] {
            assert!(is_known_event(name), "{name}");
        }
        for object in ["lead", "opportunity", "account", "contact", "activity"] {
            for action in ["created", "updated", "deleted"] {
                assert!(is_known_event(&format!("{object}.{action}")));
            }
        }
        let mut names: Vec<_> = CATALOGUE.iter().map(|e| e.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CATALOGUE.len());
    }

    #[test]
    fn patterns() {
        for good in ["*", "client.*", "sync.*", "sync.status.*", "lead.converted"] {
            assert!(is_valid_pattern(good), "{good}");
        }
        for bad in [
            "",
            ".*",
            "client",
            "client.exploded",
            "nope.*",
            "cli.*",
            "**",
            "client.**",
        ] {
            assert!(!is_valid_pattern(bad), "{bad}");
        }
        assert!(pattern_matches("webhook.*", WEBHOOK_DISABLED));
        assert!(pattern_matches("webhook.*", WEBHOOK_ENABLED));
        assert!(is_valid_pattern(WEBHOOK_DISABLED) && is_service_event(WEBHOOK_DISABLED));
        assert!(!is_service_event("client.created"));
        assert!(pattern_matches("client.*", "client.created"));
        assert!(pattern_matches("sync.*", "sync.status.changed"));
        assert!(!pattern_matches("client.*", "clients.created"));
        assert!(!pattern_matches("lead.created", "lead.updated"));
        assert!(pattern_matches("*", "lead.updated"));
    }
}
