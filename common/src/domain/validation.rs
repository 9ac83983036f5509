//! The rules every text field follows, and the collector that turns the problems of a command's
//! fields into one 400 naming each field, so a client learns about every problem at once.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use crate::error::Error;

/// The problems found in a command's fields, one message per field (the first found).
#[derive(Debug, Default)]
pub struct FieldErrors {
    details: BTreeMap<String, String>,
}

impl FieldErrors {
    pub fn fail(&mut self, name: &str, message: impl Into<String>) {
        self.details
            .entry(name.to_owned())
            .or_insert(message.into());
    }

    /// Records the field details of a 400 made elsewhere (a page's `limit` and `cursor`), so
    /// that one answer names them with the rest; any other error is handed back.
    pub fn absorb(&mut self, error: Error) -> Result<(), Error> {
        match error {
            Error::Invalid { details, .. } if !details.is_empty() => {
                for (name, message) in details {
                    self.fail(&name, message);
                }
                Ok(())
            }
            other => Err(other),
        }
    }

    /// Whether `name` has failed (for the tests of the rules that fill this).
    #[cfg(test)]
    pub fn has_failed(&self, name: &str) -> bool {
        self.details.contains_key(name)
    }

    /// `text` under the rule of a text field (`check_text`), trimmed; `None` once it failed.
    pub fn text(&mut self, name: &str, text: &str, max: usize) -> Option<String> {
        match check_text(text, max) {
            Ok(text) => Some(text.to_owned()),
            Err(message) => {
                self.fail(name, message);
                None
            }
        }
    }

    /// `n` when it lies within `range`.
    pub fn int(&mut self, name: &str, n: i64, range: RangeInclusive<i64>) -> Option<i64> {
        if range.contains(&n) {
            Some(n)
        } else {
            self.fail(
                name,
                format!(
                    "must be an integer from {} to {}",
                    range.start(),
                    range.end()
                ),
            );
            None
        }
    }

    /// At most `max` entries.
    pub fn count(&mut self, name: &str, len: usize, max: usize) -> bool {
        if len > max {
            self.fail(name, format!("must have at most {max} entries"));
        }
        len <= max
    }

    /// Nothing failed, or one 400 naming every field that did.
    pub fn finish(self) -> Result<(), Error> {
        if self.details.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid {
                message: "Validation failed.".to_owned(),
                details: self.details,
            })
        }
    }
}

/// Characters that show nothing on their own, besides white space (which `str::trim` strips)
/// and control characters (refused anywhere in a string): Unicode's Default_Ignorable_Code_Point
/// (zero-width space and joiners, bidirectional marks, the word joiner, variation selectors, the
/// byte-order mark, Hangul fillers, tags, …), the blocks of generic combining marks (accents
/// with no letter under them), the interlinear annotation controls and the blank Braille
/// pattern. A script's own vowel signs are left out: alone, they are drawn on a dotted circle.
/// A text made only of these (and white space) looks empty, so `check_text` refuses it as
/// empty; the OpenAPI pattern (`schema::text_pattern`) is written from this same table.
pub const INVISIBLE: &[(char, char)] = &[
    ('\u{00ad}', '\u{00ad}'),
    ('\u{0300}', '\u{036f}'),
    ('\u{061c}', '\u{061c}'),
    ('\u{115f}', '\u{1160}'),
    ('\u{17b4}', '\u{17b5}'),
    ('\u{180b}', '\u{180f}'),
    ('\u{1ab0}', '\u{1aff}'),
    ('\u{1dc0}', '\u{1dff}'),
    ('\u{200b}', '\u{200f}'),
    ('\u{202a}', '\u{202e}'),
    ('\u{2060}', '\u{206f}'),
    ('\u{20d0}', '\u{20ff}'),
    ('\u{2800}', '\u{2800}'),
    ('\u{3164}', '\u{3164}'),
    ('\u{fe00}', '\u{fe0f}'),
    ('\u{fe20}', '\u{fe2f}'),
    ('\u{feff}', '\u{feff}'),
    ('\u{ffa0}', '\u{ffa0}'),
    ('\u{fff0}', '\u{fffb}'),
    ('\u{1bca0}', '\u{1bca3}'),
    ('\u{1d173}', '\u{1d17a}'),
    ('\u{e0000}', '\u{e0fff}'),
];

/// Whether `c` shows nothing on its own: white space, a control character, or one of
/// `INVISIBLE`.
pub fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || INVISIBLE
            .iter()
            .any(|&(first, last)| (first..=last).contains(&c))
}

/// The one rule for a text field (a name, a description, …): trimmed of white space, at least
/// one visible character, at most `max` characters as sent, no control character. Returns the
/// trimmed text, or the message for the field.
pub fn check_text(text: &str, max: usize) -> Result<&str, String> {
    // The limit holds for what was sent, white space included, as a JSON Schema
    // `maxLength` says: a long string is not made acceptable by trailing blanks.
    let too_long = text.chars().count() > max;
    let text = text.trim();
    if text.is_empty() {
        Err("must not be empty".to_owned())
    } else if too_long {
        Err(format!("must be at most {max} characters"))
    } else if text.chars().any(char::is_control) {
        Err("must not contain control characters".to_owned())
    } else if text.chars().all(is_invisible) {
        Err("must have a visible character".to_owned())
    } else {
        Ok(text)
    }
}

/// The message for a text that names none of `names`.
pub fn one_of(names: &[&str]) -> String {
    format!("must be one of {}", names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn details(error: Error) -> BTreeMap<String, String> {
        match error {
            Error::Invalid { details, .. } => details,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn reports_every_bad_field_at_once_with_its_first_problem() {
        let mut errors = FieldErrors::default();
        assert_eq!(errors.text("name", "  Ada  ", 10).as_deref(), Some("Ada"));
        assert_eq!(errors.text("email", "", 10), None);
        assert_eq!(errors.text("company", "abcdef", 3), None);
        assert_eq!(errors.int("n", 11, 0..=10), None);
        assert_eq!(errors.int("m", 10, 0..=10), Some(10));
        assert!(!errors.count("events", 3, 2));
        errors.fail("email", "a second problem");
        let details = details(errors.finish().unwrap_err());
        assert_eq!(details["email"], "must not be empty");
        assert_eq!(details["company"], "must be at most 3 characters");
        assert_eq!(details["n"], "must be an integer from 0 to 10");
        assert_eq!(details["events"], "must have at most 2 entries");
        assert!(!details.contains_key("name") && !details.contains_key("m"));
    }

    #[test]
    fn limits_count_what_was_sent() {
        assert_eq!(
            check_text("abc\u{85}\u{85}", 4),
            Err("must be at most 4 characters".to_owned())
        );
        assert_eq!(
            check_text("a\u{1}b", 4),
            Err("must not contain control characters".to_owned())
        );
    }

    #[test]
    fn a_text_of_invisible_characters_only_is_refused() {
        for text in [
            "\u{200b}",
            " \u{200b}\u{200c}\u{200d} ",
            "\u{2060}\u{feff}",
            "\u{301}\u{301}",
            "\u{3164}",
            "\u{2800}",
            "\u{ad}",
            "\u{202e}\u{2066}",
            "\u{e0041}\u{e007f}",
            "\u{fe0f}",
        ] {
            assert_eq!(
                check_text(text, 100),
                Err("must have a visible character".to_owned()),
                "{text:?}"
            );
        }
        for (text, kept) in [
            ("e\u{301}", "e\u{301}"),
            ("\u{200b}Ada", "\u{200b}Ada"),
            (" Ada\u{200d} ", "Ada\u{200d}"),
            ("\u{93f}", "\u{93f}"),
        ] {
            assert_eq!(check_text(text, 100), Ok(kept), "{text:?}");
        }
    }

    /// The pattern's classes are written as disjoint: blanks, controls and `INVISIBLE`.
    #[test]
    fn invisible_ranges_are_ordered_and_hold_no_blank_or_control() {
        for pair in INVISIBLE.windows(2) {
            assert!(pair[0].1 < pair[1].0, "{pair:?}");
        }
        for &(first, last) in INVISIBLE {
            assert!(first <= last);
            for c in first..=last {
                assert!(!c.is_whitespace() && !c.is_control(), "{c:?}");
            }
        }
    }
}
