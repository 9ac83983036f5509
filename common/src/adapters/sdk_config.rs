//! The AWS SDK's shared configuration, loaded once per process, with the one HTTP client
//! (`sdk_http`) every SDK client of the process shares.
//!
//! A Lambda function (a build without the `embedded` feature) reads what the runtime hands it in
//! its environment: `AWS_REGION`, the role's credentials in `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, and `AWS_ENDPOINT_URL` when pointed at an
//! emulator. It does not link the default provider chain (profile files, STS web identity, IMDS,
//! ECS), which a function never uses and which costs zip size and time at start (README, bench
//! notes). Nor does it read the chain's other settings (per-service endpoint URLs, FIPS and
//! dual-stack endpoints, `AWS_MAX_ATTEMPTS`), which neither Lambda nor the template sets.
//! crm-local, crm-admin, the tests and the bench run on a laptop, where credentials come from
//! profiles too: they load the default chain.

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

use crate::adapters::sdk_http::SdkHttpClient;

/// The default chain's connect timeout, kept for the environment-only loader.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(3_100);

#[cfg(feature = "embedded")]
pub async fn shared_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .load()
        .await
}

#[cfg(not(feature = "embedded"))]
pub async fn shared_config() -> SdkConfig {
    from_lambda_environment(|name| std::env::var(name).ok())
}

/// The configuration of a Lambda function from its environment (`lookup`); what the default
/// chain adds (retries in standard mode, the connect timeout) is set the same way here, and the
/// SDK's own defaults supply the rest (tokio sleep, system clock).
pub fn from_lambda_environment(lookup: impl Fn(&str) -> Option<String>) -> SdkConfig {
    use aws_config::environment::EnvironmentVariableCredentialsProvider;
    use aws_config::retry::RetryConfig;
    use aws_config::timeout::TimeoutConfig;
    use aws_sdk_dynamodb::config::SharedCredentialsProvider;

    let region = lookup("AWS_REGION")
        .or_else(|| lookup("AWS_DEFAULT_REGION"))
        .map(Region::new);
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(region)
        .credentials_provider(SharedCredentialsProvider::new(
            EnvironmentVariableCredentialsProvider::new(),
        ))
        .retry_config(RetryConfig::standard())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .build(),
        )
        .http_client(http_client());
    if let Some(url) = lookup("AWS_ENDPOINT_URL") {
        builder = builder.endpoint_url(url);
    }
    builder.build()
}

fn http_client() -> SharedHttpClient {
    SharedHttpClient::new(SdkHttpClient::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_of(vars: &[(&str, &str)]) -> SdkConfig {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        from_lambda_environment(move |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn region_is_lambdas_and_the_endpoint_only_when_set() {
        let config = config_of(&[
            ("AWS_REGION", "eu-west-3"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
        ]);
        assert_eq!(config.region().map(Region::as_ref), Some("eu-west-3"));
        assert_eq!(config.endpoint_url(), None);

        let config = config_of(&[
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
        ]);
        assert_eq!(config.region().map(Region::as_ref), Some("us-east-1"));
        assert_eq!(config.endpoint_url(), Some("http://127.0.0.1:5000"));
    }

    #[test]
    fn retries_and_connect_timeout_match_the_default_chain() {
        let config = config_of(&[("AWS_REGION", "eu-west-3")]);
        let retry = config.retry_config().expect("retry config");
        assert_eq!(retry.max_attempts(), 3);
        assert_eq!(
            config.timeout_config().and_then(|t| t.connect_timeout()),
            Some(CONNECT_TIMEOUT)
        );
        assert!(config.credentials_provider().is_some());
    }
}
