//! `method = "aws"`: the signed `sts:GetCallerIdentity` request that Vault's AWS auth method
//! forwards to STS to learn who is logging in, packed into vaultrs's [`IamLoginRequest`].

use std::collections::BTreeMap;
use std::time::SystemTime;

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use rotator_core::SinkError;
use vaultrs::api::auth::aws::requests::IamLoginRequest;

use crate::config::DEFAULT_AWS_REGION;

/// The body of every IAM login's STS request.
const GET_CALLER_IDENTITY: &str = "Action=GetCallerIdentity&Version=2011-06-15";

/// The header carrying `server_id`, signed into the request.
const SERVER_ID_HEADER: &str = "x-vault-aws-iam-server-id";

/// The STS endpoint a login signs for: `sts_endpoint`, else AWS's for `region`.
pub(crate) fn sts_endpoint(region: &str, configured: Option<&str>) -> String {
    let endpoint = match configured {
        Some(endpoint) => endpoint.to_owned(),
        None if region == DEFAULT_AWS_REGION => "https://sts.amazonaws.com".to_owned(),
        None => format!("https://sts.{region}.amazonaws.com"),
    };
    format!("{}/", endpoint.trim_end_matches('/'))
}

/// A login request for the AWS auth method at `mount`, signed with the credentials of the
/// standard AWS chain for the STS endpoint of `region` (or `sts_endpoint`).
pub(crate) async fn iam_login_request(
    mount: &str,
    role: Option<&str>,
    region: Option<&str>,
    sts_endpoint_override: Option<&str>,
    server_id: Option<&str>,
) -> Result<IamLoginRequest, SinkError> {
    let region = region.unwrap_or(DEFAULT_AWS_REGION);
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .load()
        .await;
    let no_credentials = |why: String| SinkError::Unauthorized {
        detail: format!(
            "no AWS credentials for the aws login: {why}. The rotator looks where the AWS CLI \
             does: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, a web identity \
             token (EKS), the ECS task role, the EC2 instance profile"
        ),
    };
    let provider = config
        .credentials_provider()
        .ok_or_else(|| no_credentials("no credentials provider".to_owned()))?;
    let credentials = provider
        .provide_credentials()
        .await
        .map_err(|e| no_credentials(e.to_string()))?;
    let endpoint = sts_endpoint(region, sts_endpoint_override);
    let url = url::Url::parse(&endpoint).map_err(|_| SinkError::Other {
        detail: format!("the STS endpoint {endpoint:?} is not a URL; fix `auth.sts_endpoint`"),
        source: None,
    })?;
    let host = match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => {
            return Err(SinkError::Other {
                detail: format!("the STS endpoint {endpoint:?} has no host"),
                source: None,
            })
        }
    };
    let mut headers: Vec<(String, String)> = vec![
        ("host".to_owned(), host),
        (
            "content-type".to_owned(),
            "application/x-www-form-urlencoded; charset=utf-8".to_owned(),
        ),
    ];
    if let Some(server_id) = server_id {
        headers.push((SERVER_ID_HEADER.to_owned(), server_id.to_owned()));
    }
    let identity: Identity = credentials.into();
    let signing_failed = |what: &str| SinkError::Other {
        detail: format!("cannot sign the aws login's STS request: {what}"),
        source: None,
    };
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|_| signing_failed("incomplete signing parameters"))?
        .into();
    let signable = SignableRequest::new(
        "POST",
        endpoint.as_str(),
        headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
        SignableBody::Bytes(GET_CALLER_IDENTITY.as_bytes()),
    )
    .map_err(|_| signing_failed("the endpoint is not a valid URI"))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|_| signing_failed("the credentials could not sign it"))?
        .into_parts();
    for (name, value) in instructions.headers() {
        headers.push((name.to_owned(), value.to_owned()));
    }
    // Vault reads the headers as a JSON object of name to values.
    let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        by_name.entry(name).or_default().push(value);
    }
    let headers_json = serde_json::to_string(&by_name).map_err(|_| signing_failed("headers"))?;
    Ok(IamLoginRequest {
        mount: mount.to_owned(),
        role: role.map(str::to_owned),
        iam_http_request_method: "POST".to_owned(),
        iam_request_url: BASE64.encode(endpoint),
        iam_request_body: BASE64.encode(GET_CALLER_IDENTITY),
        iam_request_headers: BASE64.encode(headers_json),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sts_endpoints_follow_the_region_unless_configured() {
        assert_eq!(
            sts_endpoint("us-east-1", None),
            "https://sts.amazonaws.com/"
        );
        assert_eq!(
            sts_endpoint("eu-west-1", None),
            "https://sts.eu-west-1.amazonaws.com/"
        );
        assert_eq!(
            sts_endpoint("eu-west-1", Some("http://127.0.0.1:5000/")),
            "http://127.0.0.1:5000/"
        );
    }
}
