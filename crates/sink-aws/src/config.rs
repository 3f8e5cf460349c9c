//! The `[stores.NAME]` settings of an AWS Secrets Manager store, and their offline checks.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use rotator_core::{ConfigError, SinkError, MANAGED_BY_KEY};
use serde::Deserialize;
use url::{Host, Url};

/// The most user tags a secret may carry: AWS allows 50 per secret, and the rotator adds the
/// `managed-by` marker and its labels (`integration`, `token-expires-at`).
pub const MAX_USER_TAGS: usize = 45;

/// Settings of an AWS Secrets Manager store (`type = "aws_secrets_manager"`).
///
/// Credentials never appear here: they come from the standard AWS chain (environment,
/// `AWS_PROFILE` / `profile`, web identity / IRSA, ECS task role, EC2 instance metadata),
/// optionally followed by assuming `role_arn`.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// AWS region of the secrets, e.g. `"eu-west-1"`. Default: the region of the standard
    /// chain (`AWS_REGION`, `AWS_DEFAULT_REGION`, the profile, instance metadata).
    #[serde(default)]
    pub region: Option<String>,
    /// Secrets Manager endpoint to use instead of the regional one, e.g. a VPC interface
    /// endpoint `https://vpce-0123-abcd.secretsmanager.eu-west-1.vpce.amazonaws.com`, or a test
    /// server such as moto. Default: the regional endpoint (or `AWS_ENDPOINT_URL`).
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// Named profile of `~/.aws/config` and `~/.aws/credentials` to take credentials and
    /// region from. Default: `AWS_PROFILE`, else `default`.
    #[serde(default)]
    pub profile: Option<String>,
    /// IAM role to assume with STS `AssumeRole` before every call, for a store in another
    /// account, e.g. `"arn:aws:iam::123456789012:role/alation-rotator"`. The credentials of
    /// the standard chain are used to assume it. Default: no role, use the chain directly.
    #[serde(default)]
    pub role_arn: Option<String>,
    /// Session name of the assumed role, shown in CloudTrail. Only with `role_arn`.
    /// Default: `"alation-rotator"`.
    #[serde(default)]
    pub role_session_name: Option<String>,
    /// External id the role's trust policy requires (`sts:ExternalId`). Only with `role_arn`.
    #[serde(default)]
    pub external_id: Option<String>,
    /// STS endpoint for assuming `role_arn`, e.g. a VPC interface endpoint for STS.
    /// Only with `role_arn`. Default: the regional STS endpoint (or `AWS_ENDPOINT_URL_STS`).
    #[serde(default)]
    pub sts_endpoint_url: Option<String>,
    /// KMS key that encrypts secrets this store creates: key id, key ARN, alias name
    /// (`alias/alation-rotator`) or alias ARN. Only applies when the rotator creates a secret;
    /// existing secrets keep their key. Default: the account's `aws/secretsmanager` key.
    /// Consumers in other accounts need a customer managed key.
    #[serde(default)]
    pub kms_key_id: Option<String>,
    /// Description set on secrets this store creates. Default:
    /// `"Alation API access token, kept fresh by alation-rotator"`.
    #[serde(default)]
    pub description: Option<String>,
    /// Tags set on every secret this store writes (at creation, and added when missing
    /// later), e.g. `{ team = "data-platform", cost-center = "42" }`. The rotator adds
    /// `managed-by = "alation-rotator"`, `integration` and `token-expires-at` itself.
    /// At most 45; keys must not start with `aws:`. Default: none.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Longest time one API call may take, retries and their backoff included (humantime,
    /// e.g. `"30s"`). Time spent waiting for `max_writes_per_second` does not count.
    /// Default: `"30s"`.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Longest time to wait for a TCP/TLS connection (humantime). Default: `"5s"`.
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Attempts per API call in the SDK's standard retry mode (throttling, 5xx and
    /// connection errors are retried with jittered exponential backoff), 1 to 10. Default: 3.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Most calls per second this process makes in each of Secrets Manager's write quotas
    /// (`PutSecretValue`, `UpdateSecretVersionStage` and `UpdateSecret` share one;
    /// `TagResource` has another; `CreateSecret` a third), per region and `role_arn`, over
    /// every store of the process (the lowest setting among them wins). Kept over windows of
    /// 1.1 s, so that uneven network delays cannot put more than this into one second at AWS.
    /// AWS allows 50 per second per account and region for all applications together, and
    /// will not raise it; the default leaves the rest to them. 1 to 1000 (more than 50 only
    /// makes sense against a test server). Default: 20.
    #[serde(default = "default_max_writes_per_second")]
    pub max_writes_per_second: u32,
    /// Allow a plain `http://` `endpoint_url` or `sts_endpoint_url` on a host that is not
    /// a loopback address. Requests are signed, not encrypted: anyone on the path reads the
    /// tokens. Only for a test server on another machine. Default: `false` (`http://` only
    /// to `127.0.0.0/8`, `::1` or `localhost`).
    #[serde(default)]
    pub allow_insecure_http: bool,
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_max_attempts() -> u32 {
    3
}

fn default_max_writes_per_second() -> u32 {
    DEFAULT_MAX_WRITES_PER_SECOND
}

/// The `max_writes_per_second` of a store that does not set it.
pub const DEFAULT_MAX_WRITES_PER_SECOND: u32 = 20;

/// The description set on created secrets when `description` is not configured.
pub const DEFAULT_DESCRIPTION: &str = "Alation API access token, kept fresh by alation-rotator";

/// The session name used for `role_arn` when `role_session_name` is not configured.
pub const DEFAULT_ROLE_SESSION_NAME: &str = "alation-rotator";

impl Default for Config {
    fn default() -> Self {
        Self {
            region: None,
            endpoint_url: None,
            profile: None,
            role_arn: None,
            role_session_name: None,
            external_id: None,
            sts_endpoint_url: None,
            kms_key_id: None,
            description: None,
            tags: BTreeMap::new(),
            timeout: default_timeout(),
            connect_timeout: default_connect_timeout(),
            max_attempts: default_max_attempts(),
            max_writes_per_second: default_max_writes_per_second(),
            allow_insecure_http: false,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Nothing here is a credential, but the external id is treated as one out of caution.
        f.debug_struct("Config")
            .field("region", &self.region)
            .field("endpoint_url", &self.endpoint_url)
            .field("profile", &self.profile)
            .field("role_arn", &self.role_arn)
            .field("role_session_name", &self.role_session_name)
            .field(
                "external_id",
                &self.external_id.as_ref().map(|_| "[REDACTED]"),
            )
            .field("sts_endpoint_url", &self.sts_endpoint_url)
            .field("kms_key_id", &self.kms_key_id)
            .field("description", &self.description)
            .field("tags", &self.tags)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_attempts", &self.max_attempts)
            .field("max_writes_per_second", &self.max_writes_per_second)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .finish()
    }
}

impl Config {
    /// Checks every setting offline (no network, no credentials).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(region) = &self.region {
            let ok = !region.is_empty()
                && region.len() <= 64
                && region
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !ok {
                return Err(ConfigError::new(
                    "region",
                    format!("{region:?} is not an AWS region name; expected e.g. \"eu-west-1\""),
                ));
            }
        }
        if let Some(url) = &self.endpoint_url {
            check_endpoint("endpoint_url", url, self.allow_insecure_http)?;
        }
        if let Some(url) = &self.sts_endpoint_url {
            check_endpoint("sts_endpoint_url", url, self.allow_insecure_http)?;
        }
        if let Some(profile) = &self.profile {
            if profile.trim().is_empty() {
                return Err(ConfigError::new(
                    "profile",
                    "is empty; name a profile of ~/.aws/config or remove the setting",
                ));
            }
        }
        match &self.role_arn {
            Some(arn) => {
                let parts: Vec<&str> = arn.splitn(6, ':').collect();
                let ok = parts.len() == 6
                    && parts[0] == "arn"
                    && parts[1].starts_with("aws")
                    && parts[2] == "iam"
                    && parts[5].starts_with("role/")
                    && parts[5].len() > "role/".len();
                if !ok {
                    return Err(ConfigError::new(
                        "role_arn",
                        format!(
                            "{arn:?} is not an IAM role ARN; expected \
                             \"arn:aws:iam::<account-id>:role/<role-name>\""
                        ),
                    ));
                }
            }
            None => {
                for (field, set) in [
                    ("role_session_name", self.role_session_name.is_some()),
                    ("external_id", self.external_id.is_some()),
                    ("sts_endpoint_url", self.sts_endpoint_url.is_some()),
                ] {
                    if set {
                        return Err(ConfigError::new(
                            field,
                            "only applies with `role_arn`; set `role_arn` or remove it",
                        ));
                    }
                }
            }
        }
        if let Some(name) = &self.role_session_name {
            let ok = (2..=64).contains(&name.len())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
            if !ok {
                return Err(ConfigError::new(
                    "role_session_name",
                    "must be 2 to 64 characters of letters, digits and +=,.@_-",
                ));
            }
        }
        if let Some(id) = &self.external_id {
            let ok = (2..=1224).contains(&id.len())
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@:/_-".contains(c));
            if !ok {
                return Err(ConfigError::new(
                    "external_id",
                    "must be 2 to 1224 characters of letters, digits and +=,.@:/_-",
                ));
            }
        }
        if let Some(key) = &self.kms_key_id {
            if key.trim().is_empty() || key.len() > 2048 {
                return Err(ConfigError::new(
                    "kms_key_id",
                    "must be a KMS key id, key ARN, alias name (alias/...) or alias ARN",
                ));
            }
        }
        if let Some(description) = &self.description {
            if description.chars().count() > 2048 {
                return Err(ConfigError::new(
                    "description",
                    "is longer than the 2048 characters AWS allows",
                ));
            }
        }
        self.validate_tags()?;
        if self.timeout.is_zero() {
            return Err(ConfigError::new(
                "timeout",
                "must be longer than zero, e.g. \"30s\"",
            ));
        }
        if self.connect_timeout.is_zero() {
            return Err(ConfigError::new(
                "connect_timeout",
                "must be longer than zero, e.g. \"5s\"",
            ));
        }
        if !(1..=10).contains(&self.max_attempts) {
            return Err(ConfigError::new(
                "max_attempts",
                format!("is {}; expected 1 to 10", self.max_attempts),
            ));
        }
        if !(1..=1000).contains(&self.max_writes_per_second) {
            return Err(ConfigError::new(
                "max_writes_per_second",
                format!(
                    "is {}; expected 1 to 1000 (AWS allows 50 per second per account and \
                     region, shared by every application)",
                    self.max_writes_per_second
                ),
            ));
        }
        Ok(())
    }

    fn validate_tags(&self) -> Result<(), ConfigError> {
        if self.tags.len() > MAX_USER_TAGS {
            return Err(ConfigError::new(
                "tags",
                format!(
                    "has {} tags; AWS allows 50 per secret and the rotator needs 5 of them, \
                     so at most {MAX_USER_TAGS}",
                    self.tags.len()
                ),
            ));
        }
        for (key, value) in &self.tags {
            if key.is_empty() || key.chars().count() > 128 || !key.chars().all(tag_char) {
                return Err(ConfigError::new(
                    "tags",
                    format!(
                        "tag key {key:?} is not valid: 1 to 128 letters, digits, spaces and \
                         _.:/=+-@"
                    ),
                ));
            }
            if key.to_ascii_lowercase().starts_with("aws:") {
                return Err(ConfigError::new(
                    "tags",
                    format!("tag key {key:?} starts with `aws:`, which AWS reserves"),
                ));
            }
            if [MANAGED_BY_KEY, "integration", "token-expires-at"].contains(&key.as_str()) {
                return Err(ConfigError::new(
                    "tags",
                    format!("tag key {key:?} is set by alation-rotator itself; remove it"),
                ));
            }
            if value.chars().count() > 256 || !value.chars().all(tag_char) {
                return Err(ConfigError::new(
                    "tags",
                    format!(
                        "the value of tag {key:?} is not valid: at most 256 letters, digits, \
                         spaces and _.:/=+-@"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Characters AWS allows in tag keys and values.
pub(crate) fn tag_char(c: char) -> bool {
    c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c)
}

/// Checks that `url` is an `https://` URL, or an `http://` URL on a loopback host (or any
/// host with `allow_insecure_http`). Used for the configured endpoints and for an endpoint
/// that the environment (`AWS_ENDPOINT_URL`) gives the SDK.
pub(crate) fn check_endpoint(
    key: &str,
    url: &str,
    allow_insecure_http: bool,
) -> Result<(), ConfigError> {
    let parsed = Url::parse(url).ok().filter(|u| {
        matches!(u.scheme(), "http" | "https")
            && u.host().is_some()
            && u.username().is_empty()
            && u.password().is_none()
    });
    let Some(parsed) = parsed else {
        return Err(ConfigError::new(
            key,
            format!("{url:?} is not an http(s) URL; expected e.g. \"https://host:443\""),
        ));
    };
    if parsed.scheme() == "http" && !allow_insecure_http && !is_loopback(&parsed) {
        return Err(ConfigError::new(
            key,
            format!(
                "{url:?} is plain http:// to a host that is not a loopback address, so tokens \
                 would cross the network unencrypted; use https://, or set \
                 `allow_insecure_http = true` on this store if this is a test server"
            ),
        ));
    }
    Ok(())
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Checks `key` against AWS's rules for secret names, offline.
///
/// A name is 1 to 512 characters of letters, digits and `/_+=.@-`. It must not end with a
/// hyphen followed by six characters: AWS appends exactly that to form the secret's ARN, and
/// such a name is confused with a partial ARN (AWS's own advice). It must not start with
/// `arn:` either (an ARN is not a name).
pub fn validate_key(key: &str) -> Result<(), SinkError> {
    let invalid = |detail: &str| SinkError::InvalidKey {
        key: key.to_owned(),
        detail: detail.to_owned(),
    };
    if key.is_empty() {
        return Err(invalid("an AWS secret name must not be empty"));
    }
    if key.len() > 512 {
        return Err(invalid(
            "an AWS secret name is at most 512 characters; choose a shorter key",
        ));
    }
    if !key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c))
    {
        return Err(invalid(
            "an AWS secret name may only contain ASCII letters, digits and /_+=.@-",
        ));
    }
    let bytes = key.as_bytes();
    if bytes.len() >= 7 && bytes[bytes.len() - 7] == b'-' {
        return Err(invalid(
            "an AWS secret name must not end with a hyphen followed by six characters \
             (it would be mistaken for a partial ARN); change the last part, e.g. `-prod` or \
             `/prod`",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented_values_parse() {
        Config::default().validate().unwrap();
        let config: Config = toml_like(
            r#"{"region": "eu-west-1", "endpoint_url": "http://127.0.0.1:5000",
                "role_arn": "arn:aws:iam::123456789012:role/rotator", "external_id": "abc-123",
                "kms_key_id": "alias/alation-rotator", "tags": {"team": "data platform"},
                "timeout": "10s", "max_attempts": 5}"#,
        );
        config.validate().unwrap();
        assert_eq!(config.timeout, Duration::from_secs(10));
        assert_eq!(config.connect_timeout, Duration::from_secs(5));
    }

    fn toml_like(json: &str) -> Config {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = serde_json::from_str::<Config>(r#"{"regoin": "eu-west-1"}"#).unwrap_err();
        assert!(err.to_string().contains("regoin"), "{err}");
    }

    #[test]
    fn bad_settings_name_the_field() {
        let cases: Vec<(Config, &str)> = vec![
            (
                Config {
                    region: Some("EU West".into()),
                    ..Config::default()
                },
                "region",
            ),
            (
                Config {
                    endpoint_url: Some("localhost:5000".into()),
                    ..Config::default()
                },
                "endpoint_url",
            ),
            (
                Config {
                    role_arn: Some("arn:aws:iam::1:user/me".into()),
                    ..Config::default()
                },
                "role_arn",
            ),
            (
                Config {
                    external_id: Some("x-1234".into()),
                    ..Config::default()
                },
                "external_id",
            ),
            (
                Config {
                    tags: BTreeMap::from([("aws:owner".into(), "x".into())]),
                    ..Config::default()
                },
                "tags",
            ),
            (
                Config {
                    tags: BTreeMap::from([(MANAGED_BY_KEY.into(), "x".into())]),
                    ..Config::default()
                },
                "tags",
            ),
            (
                Config {
                    tags: BTreeMap::from([("team".into(), "a,b".into())]),
                    ..Config::default()
                },
                "tags",
            ),
            (
                Config {
                    max_attempts: 0,
                    ..Config::default()
                },
                "max_attempts",
            ),
            (
                Config {
                    timeout: Duration::ZERO,
                    ..Config::default()
                },
                "timeout",
            ),
            (
                Config {
                    max_writes_per_second: 0,
                    ..Config::default()
                },
                "max_writes_per_second",
            ),
            (
                Config {
                    endpoint_url: Some("http://secretsmanager.internal:4566".into()),
                    ..Config::default()
                },
                "endpoint_url",
            ),
            (
                Config {
                    endpoint_url: Some("https://user:pw@vpce.example.com".into()),
                    ..Config::default()
                },
                "endpoint_url",
            ),
        ];
        for (config, field) in cases {
            let err = config.validate().unwrap_err();
            assert_eq!(err.key, field, "{err}");
            assert!(err.to_string().starts_with(&format!("`{field}`")), "{err}");
        }
    }

    #[test]
    fn plain_http_is_for_loopback_unless_allowed() {
        for loopback in [
            "http://127.0.0.1:5000",
            "http://127.8.9.10",
            "http://[::1]:4566",
            "http://localhost:4566",
            "https://secretsmanager.internal",
        ] {
            check_endpoint("endpoint_url", loopback, false)
                .unwrap_or_else(|e| panic!("{loopback}: {e}"));
        }
        for remote in [
            "http://10.0.0.5:4566",
            "http://moto.internal",
            "http://localhost.example.com",
        ] {
            let err = check_endpoint("endpoint_url", remote, false).unwrap_err();
            assert_eq!(err.key, "endpoint_url");
            assert!(
                err.message.contains("allow_insecure_http = true"),
                "{remote}: {err}"
            );
            check_endpoint("endpoint_url", remote, true).unwrap();
        }
        let config = Config {
            role_arn: Some("arn:aws:iam::123456789012:role/rotator".into()),
            sts_endpoint_url: Some("http://sts.internal".into()),
            ..Config::default()
        };
        assert_eq!(config.validate().unwrap_err().key, "sts_endpoint_url");
        Config {
            allow_insecure_http: true,
            ..config
        }
        .validate()
        .unwrap();
    }

    #[test]
    fn debug_hides_the_external_id() {
        let config = Config {
            role_arn: Some("arn:aws:iam::123456789012:role/rotator".into()),
            external_id: Some("very-private-external-id".into()),
            ..Config::default()
        };
        let text = format!("{config:?}");
        assert!(!text.contains("very-private-external-id"), "{text}");
        assert!(text.contains("[REDACTED]"), "{text}");
    }

    #[test]
    fn secret_names_follow_aws_rules() {
        for good in [
            "alation/tableau-prod",
            "a",
            "team_a/alation+token=1.2@x",
            "alation/dbt-production",
            &"a".repeat(512),
        ] {
            validate_key(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in [
            "",
            "alation/tableau prod",
            "alation:tableau",
            "alation/tableau-abc123",
            "ümlaut",
            &"a".repeat(513),
        ] {
            let err = validate_key(bad).unwrap_err();
            assert!(matches!(err, SinkError::InvalidKey { .. }), "{bad}: {err}");
        }
    }
}
