//! What one GraphQL document may ask for, beside async-graphql's depth and complexity limits
//! (docs/architecture.md §Limits).
//!
//! Complexity prices a field by what it returns; a root field also costs a store read or more
//! whatever it returns, and async-graphql runs a document's root query fields concurrently. So
//! a document may name at most [`MAX_ROOT_FIELDS`] root fields, and one field at most
//! [`MAX_SAME_ROOT_FIELD`] times (aliases, fragments and repeats all count: async-graphql runs
//! each occurrence). 2,400 aliases of `syncStatus` were 2,400 concurrent reads.

use std::collections::HashMap;
use std::time::Duration;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};

/// Root fields of one operation, in all.
pub const MAX_ROOT_FIELDS: usize = 50;
/// Occurrences of one root field in one operation.
pub const MAX_SAME_ROOT_FIELD: usize = 20;
/// Fragments spread in fragments at the root, at most this deep (deeper is a cycle, or as good).
const MAX_FRAGMENT_NESTING: usize = 16;

/// How long a request may run: past it, it is stopped and answered with a `TIMEOUT` error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeBudgets {
    pub query: Duration,
    pub mutation: Duration,
}

impl TimeBudgets {
    /// A query 10 s; a mutation 28 s, since `testWebhook` waits up to 25 s for the receiver
    /// (`domain::webhook::IN_REQUEST_TIMEOUT_MS`) and API Gateway gives up after 30 s.
    pub const DEFAULT: TimeBudgets = TimeBudgets {
        query: Duration::from_secs(10),
        mutation: Duration::from_secs(28),
    };

    /// The budget of the operation a request runs: a mutation's when it names one (or the
    /// document holds only one operation, a mutation), a query's otherwise.
    pub fn of(&self, document: &ExecutableDocument, operation_name: Option<&str>) -> Duration {
        let chosen = match (&document.operations, operation_name) {
            (DocumentOperations::Single(operation), _) => Some(operation),
            (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name),
            // One named operation and no name asked for: it runs.
            (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
                operations.values().next()
            }
            (DocumentOperations::Multiple(_), None) => None,
        };
        match chosen.map(|operation| operation.node.ty) {
            Some(OperationType::Mutation) => self.mutation,
            _ => self.query,
        }
    }
}

/// Refuses a document with an operation over the root-field limits; the message says which.
pub fn check_root_fields(document: &ExecutableDocument) -> Result<(), String> {
    for (_, operation) in document.operations.iter() {
        let mut counts = Counts::default();
        counts.add(document, &operation.node.selection_set.node, 0)?;
    }
    Ok(())
}

#[derive(Default)]
struct Counts<'a> {
    total: usize,
    by_name: HashMap<&'a str, usize>,
}

impl<'a> Counts<'a> {
    /// Counts the fields of `set` and of the fragments it spreads, stopping at the first limit
    /// passed (so the walk is as short as the limits, whatever the document).
    fn add(
        &mut self,
        document: &'a ExecutableDocument,
        set: &'a SelectionSet,
        nesting: usize,
    ) -> Result<(), String> {
        if nesting > MAX_FRAGMENT_NESTING {
            return Err(format!(
                "Fragments are nested more than {MAX_FRAGMENT_NESTING} deep at the root."
            ));
        }
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.as_str();
                    self.total += 1;
                    let same = self.by_name.entry(name).or_default();
                    *same += 1;
                    if *same > MAX_SAME_ROOT_FIELD {
                        return Err(format!(
                            "`{name}` is asked for more than {MAX_SAME_ROOT_FIELD} times in one \
                             operation (aliases and fragments count); ask for the rest in \
                             another request."
                        ));
                    }
                    if self.total > MAX_ROOT_FIELDS {
                        return Err(format!(
                            "An operation may ask for at most {MAX_ROOT_FIELDS} root fields \
                             (aliases and fragments count); ask for the rest in another request."
                        ));
                    }
                }
                Selection::FragmentSpread(spread) => {
                    // An unknown fragment is left to validation, which names it.
                    if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node)
                    {
                        self.add(document, &fragment.node.selection_set.node, nesting + 1)?;
                    }
                }
                Selection::InlineFragment(inline) => {
                    self.add(document, &inline.node.selection_set.node, nesting + 1)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    fn check(query: &str) -> Result<(), String> {
        check_root_fields(&parse_query(query).unwrap())
    }

    fn aliases(field: &str, n: usize) -> String {
        (0..n).map(|i| format!("a{i}: {field} ")).collect()
    }

    #[test]
    fn one_field_may_be_asked_for_twenty_times() {
        let ok = format!("{{ {} }}", aliases("syncStatus { totalClients }", 20));
        assert_eq!(check(&ok), Ok(()));
        let over = format!("{{ {} }}", aliases("syncStatus { totalClients }", 21));
        let message = check(&over).unwrap_err();
        assert!(message.contains("`syncStatus`"), "{message}");
    }

    #[test]
    fn fifty_root_fields_in_all() {
        let fifty = format!(
            "{{ {} {} {} }}",
            aliases("syncStatus { totalClients }", 20),
            aliases("webhookEvents { name }", 20),
            aliases("webhookStats { total }", 10),
        );
        assert_eq!(check(&fifty), Ok(()));
        let more = fifty.replacen("{ ", "{ __typename ", 1);
        assert!(check(&more).unwrap_err().contains("at most 50 root fields"));
    }

    #[test]
    fn fragments_and_repeats_count_each_time() {
        let spread = format!(
            "query {{ ...F ...F ...F }} fragment F on Query {{ {} }}",
            aliases("syncStatus { totalClients }", 7)
        );
        assert!(
            check(&spread).is_err(),
            "21 through one fragment spread 3 times"
        );
        let inline = format!(
            "{{ ... on Query {{ {} }} ... {{ {} }} }}",
            aliases("webhookEvents { name }", 11),
            aliases("webhookEvents { name }", 10)
        );
        assert!(check(&inline).is_err());
        let repeated = format!("{{ {} }}", "webhookEvents { name } ".repeat(21));
        assert!(check(&repeated).is_err());
    }

    #[test]
    fn a_fragment_cycle_ends_the_walk() {
        let cycle = "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }";
        assert!(check(cycle).unwrap_err().contains("nested"));
    }

    #[test]
    fn every_operation_of_the_document_is_checked() {
        let document = format!(
            "query A {{ syncStatus {{ totalClients }} }} query B {{ {} }}",
            aliases("syncStatus { totalClients }", 21)
        );
        assert!(check(&document).is_err());
    }

    #[test]
    fn mutations_have_the_longer_budget() {
        let budgets = TimeBudgets::DEFAULT;
        let budget =
            |query: &str, name: Option<&str>| budgets.of(&parse_query(query).unwrap(), name);
        assert_eq!(
            budget("{ syncStatus { totalClients } }", None),
            budgets.query
        );
        assert_eq!(
            budget("mutation { deleteWebhook(id: \"x\") { success } }", None),
            budgets.mutation
        );
        let both = "query Q { syncStatus { totalClients } } mutation M { deleteWebhook(id: \"x\") { success } }";
        assert_eq!(budget(both, Some("M")), budgets.mutation);
        assert_eq!(budget(both, Some("Q")), budgets.query);
        assert_eq!(budget(both, None), budgets.query);
        let named = "mutation M { deleteWebhook(id: \"x\") { success } }";
        assert_eq!(budget(named, None), budgets.mutation);
    }
}
