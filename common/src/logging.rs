//! Log output for every binary: one line per event on stdout, which Lambda sends to CloudWatch.
//!
//! Level and format follow Lambda's advanced logging controls: `AWS_LAMBDA_LOG_LEVEL`, else
//! `RUST_LOG` if it is a plain level, else INFO; JSON lines when `AWS_LAMBDA_LOG_FORMAT` is
//! `JSON`, in the layout of the runtime's default subscriber. Unlike that subscriber there is one
//! level for every target, and Lambda's level wins over `RUST_LOG` (Lambda drops lines below it
//! anyway): per-target directives (`RUST_LOG=common=debug`) need tracing-subscriber's
//! `EnvFilter`, whose parser links a regex engine into every zipped function (README, bench
//! notes).

use tracing::level_filters::LevelFilter;

/// Installs the process-wide subscriber; a second call leaves the first in place.
pub fn init() {
    let level = level_from(
        std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref(),
        std::env::var("RUST_LOG").ok().as_deref(),
    );
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_max_level(level);
    // Err only when a subscriber is already installed, which is then kept.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Lambda's level (which also knows `FATAL`) wins over `RUST_LOG`; anything that is not a
/// plain level is ignored.
fn level_from(lambda: Option<&str>, rust_log: Option<&str>) -> LevelFilter {
    [lambda, rust_log]
        .into_iter()
        .flatten()
        .find_map(parse_level)
        .unwrap_or(LevelFilter::INFO)
}

fn parse_level(text: &str) -> Option<LevelFilter> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("fatal") {
        return Some(LevelFilter::ERROR);
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambdas_level_wins_over_rust_log() {
        assert_eq!(level_from(Some("DEBUG"), Some("error")), LevelFilter::DEBUG);
        assert_eq!(level_from(Some("FATAL"), None), LevelFilter::ERROR);
    }

    #[test]
    fn rust_log_applies_when_lambda_sets_no_level() {
        assert_eq!(level_from(None, Some("warn")), LevelFilter::WARN);
        assert_eq!(level_from(Some("loud"), Some("trace")), LevelFilter::TRACE);
    }

    #[test]
    fn info_when_nothing_usable_is_set() {
        assert_eq!(level_from(None, None), LevelFilter::INFO);
        assert_eq!(level_from(None, Some("common=debug")), LevelFilter::INFO);
    }
}
