//! Reading a Query as far as a caller needs. DynamoDB ends a response at `Limit` items or after
//! 1 MB read, whichever comes first, and applies a filter after both: one response is never "the
//! page". Every Query of the store that may need more than one response goes through
//! `read_query`.

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;

use super::attributes::Item;
use super::sdk_error;
use crate::error::Result;

/// How much of a Query to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Reading {
    /// Stop once this many items are found; `None`: read to the end.
    want: Option<usize>,
    /// Stop once this many items have been evaluated, matched by the filter or not. Only a
    /// filtered Query needs it: without it a rare match reads the whole key range.
    evaluate_at_most: Option<usize>,
}

impl Reading {
    /// Every item of the query.
    pub(super) fn all() -> Reading {
        Reading {
            want: None,
            evaluate_at_most: None,
        }
    }

    /// The first `n` items (fewer only at the query's end).
    pub(super) fn first(n: usize) -> Reading {
        Reading {
            want: Some(n),
            evaluate_at_most: None,
        }
    }

    /// The first `n` items that pass the filter among at most `evaluated` items read.
    pub(super) fn first_among(n: usize, evaluated: usize) -> Reading {
        Reading {
            want: Some(n),
            evaluate_at_most: Some(evaluated),
        }
    }

    /// The `Limit` of request number `round` (from 0). A filtered read starts with a page of
    /// what it wants and doubles it each round, so a common status costs about one page and a
    /// rare one a few requests up to the evaluation budget.
    fn limit(&self, found: usize, evaluated: usize, round: u32) -> Option<i32> {
        let limit = match (self.want, self.evaluate_at_most) {
            (want, Some(budget)) => {
                let page = want.unwrap_or(budget).max(1) << round.min(20);
                Some(page.min(budget.saturating_sub(evaluated)))
            }
            (Some(want), None) => Some(want.saturating_sub(found)),
            (None, None) => None,
        };
        limit.map(|n| i32::try_from(n.max(1)).unwrap_or(i32::MAX))
    }

    fn satisfied(&self, found: usize, evaluated: usize) -> bool {
        self.want.is_some_and(|want| found >= want)
            || self.evaluate_at_most.is_some_and(|most| evaluated >= most)
    }
}

/// What a read found, and where it stopped.
#[derive(Debug, Default)]
pub(super) struct Read {
    pub(super) items: Vec<Item>,
    /// The last key evaluated when the read stopped with items possibly left (start after it to
    /// go on); `None` when it reached the query's end.
    pub(super) stopped_at: Option<Item>,
}

/// Sends `query` (everything set but its start and `Limit`) from `start` until `reading` is
/// satisfied or the query ends. A filtered read may return more than it wants (the rest of the
/// response that satisfied it): callers keep what they asked for.
pub(super) async fn read_query(
    query: &QueryFluentBuilder,
    start: Option<Item>,
    reading: Reading,
) -> Result<Read> {
    let mut read = Read::default();
    if reading.want == Some(0) {
        read.stopped_at = start;
        return Ok(read);
    }
    let mut start = start;
    let mut evaluated = 0;
    for round in 0.. {
        let output = query
            .clone()
            .set_exclusive_start_key(start)
            .set_limit(reading.limit(read.items.len(), evaluated, round))
            .send()
            .await
            .map_err(sdk_error)?;
        evaluated += usize::try_from(output.scanned_count).unwrap_or(0);
        read.items.extend(output.items.unwrap_or_default());
        match output.last_evaluated_key {
            None => break,
            Some(next) if reading.satisfied(read.items.len(), evaluated) => {
                read.stopped_at = Some(next);
                break;
            }
            Some(next) => start = Some(next),
        }
    }
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unfiltered_read_asks_for_what_is_missing() {
        let first = Reading::first(51);
        assert_eq!(first.limit(0, 0, 0), Some(51));
        assert_eq!(first.limit(30, 30, 1), Some(21));
        assert!(!first.satisfied(50, 50));
        assert!(first.satisfied(51, 51));
        assert_eq!(Reading::all().limit(10, 10, 3), None);
        assert!(!Reading::all().satisfied(usize::MAX, usize::MAX));
    }

    #[test]
    fn a_filtered_read_grows_its_pages_within_its_budget() {
        let rare = Reading::first_among(51, 1_000);
        let limits: Vec<Option<i32>> = [(0, 0), (0, 51), (1, 153), (1, 357), (2, 765)]
            .iter()
            .enumerate()
            .map(|(round, (found, evaluated))| rare.limit(*found, *evaluated, round as u32))
            .collect();
        assert_eq!(
            limits,
            [Some(51), Some(102), Some(204), Some(408), Some(235)]
        );
        assert!(rare.satisfied(3, 1_000), "the budget ends the read");
        assert!(rare.satisfied(51, 200), "so does a full page");
    }
}
