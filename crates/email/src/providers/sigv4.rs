//! AWS Signature Version 4 for one request with a body: the `Authorization` and
//! `X-Amz-Date` headers (and `X-Amz-Content-Sha256`) over the method, path, query, the headers
//! named, and the body's SHA-256. Written out (about sixty lines over `hmac` and `sha2`, which
//! Herald already builds) rather than taken from `aws-sigv4`, whose dependency tree (the
//! smithy runtime types) would cost more to build than this code; the unit tests check it
//! against the examples of AWS's own SigV4 test suite.

use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::macros::format_description;

type HmacSha256 = hmac::Hmac<Sha256>;

/// The credentials and scope a request is signed for.
#[derive(Clone)]
pub struct AwsCredentials<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub region: &'a str,
    /// The signing name of the service, e.g. `ses`.
    pub service: &'a str,
}

impl std::fmt::Debug for AwsCredentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[redacted]")
            .field("region", &self.region)
            .field("service", &self.service)
            .finish()
    }
}

/// The request as signed: `path` is the URL's path as sent (already percent-encoded), `query`
/// its query string without `?`, and `headers` every header to sign, `host` included.
#[derive(Debug, Clone)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// The headers to add to `request` so that AWS accepts it at `now`: `x-amz-date`,
/// `x-amz-content-sha256` and `authorization`. The first two are signed as well.
pub fn sign(
    credentials: &AwsCredentials<'_>,
    request: &SignedRequest<'_>,
    now: OffsetDateTime,
) -> Vec<(String, String)> {
    let amz_date = now
        .to_offset(time::UtcOffset::UTC)
        .format(format_description!("[year][month][day]T[hour][minute][second]Z"))
        .unwrap_or_else(|_| unreachable!("formats every UTC date"));
    let payload_hash = hex(&Sha256::digest(request.body));
    let mut headers = request.headers.to_vec();
    headers.push(("x-amz-content-sha256", &payload_hash));
    let authorization = authorization(credentials, &SignedRequest { headers: &headers, ..request.clone() }, &amz_date);
    vec![
        ("x-amz-date".into(), amz_date),
        ("x-amz-content-sha256".into(), payload_hash),
        ("authorization".into(), authorization),
    ]
}

/// The `Authorization` header over `request`'s headers and `x-amz-date: amz_date`.
fn authorization(credentials: &AwsCredentials<'_>, request: &SignedRequest<'_>, amz_date: &str) -> String {
    let date = &amz_date[..8];
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.split_whitespace().collect::<Vec<_>>().join(" ")))
        .collect();
    headers.push(("x-amz-date".into(), amz_date.to_owned()));
    headers.sort();
    let signed_headers = headers.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>().join(";");
    let canonical_headers: String = headers.iter().map(|(name, value)| format!("{name}:{value}\n")).collect();
    let canonical_request = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        request.method,
        if request.path.is_empty() { "/" } else { request.path },
        canonical_query(request.query),
        hex(&Sha256::digest(request.body)),
    );
    let scope = format!("{date}/{}/{}/aws4_request", credentials.region, credentials.service);
    let string_to_sign =
        format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex(&Sha256::digest(canonical_request.as_bytes())));
    let mut key = hmac(format!("AWS4{}", credentials.secret_access_key).as_bytes(), date.as_bytes());
    for part in [credentials.region, credentials.service, "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let signature = hex(&hmac(&key, string_to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        credentials.access_key_id
    )
}

/// The query's pairs sorted by name, then value (they arrive encoded; AWS wants them so).
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(&str, &str)> =
        query.split('&').filter(|p| !p.is_empty()).map(|p| p.split_once('=').unwrap_or((p, ""))).collect();
    pairs.sort_unstable();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const CREDENTIALS: AwsCredentials<'static> = AwsCredentials {
        access_key_id: "AKIDEXAMPLE",
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        region: "us-east-1",
        service: "service",
    };

    /// The signature of one request of AWS's SigV4 test suite (host `example.amazonaws.com`,
    /// 2015-08-30T12:36:00Z, empty body).
    fn suite_signature(method: &str, query: &str) -> String {
        let request =
            SignedRequest { method, path: "/", query, headers: &[("Host", "example.amazonaws.com")], body: b"" };
        let authorization = authorization(&CREDENTIALS, &request, "20150830T123600Z");
        assert!(
            authorization.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                 SignedHeaders=host;x-amz-date, Signature="
            ),
            "{authorization}"
        );
        authorization.rsplit('=').next().unwrap_or_default().to_owned()
    }

    #[test]
    fn signatures_match_the_aws_test_suite() {
        // get-vanilla, post-vanilla and get-vanilla-query-order-key-case from the suite.
        assert_eq!(suite_signature("GET", ""), "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
        assert_eq!(suite_signature("POST", ""), "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
        assert_eq!(
            suite_signature("GET", "Param2=value2&Param1=value1"),
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
        );
    }

    #[test]
    fn the_authorization_header_names_scope_headers_and_signature() {
        let request = SignedRequest {
            method: "POST",
            path: "/v2/email/outbound-emails",
            query: "",
            headers: &[("Host", "email.us-east-1.amazonaws.com"), ("Content-Type", "application/json")],
            body: b"{}",
        };
        let headers = sign(&CREDENTIALS, &request, datetime!(2015-08-30 12:36:00 UTC));
        assert_eq!(headers[0], ("x-amz-date".into(), "20150830T123600Z".into()));
        assert_eq!(headers[1].1, hex(&Sha256::digest(b"{}")));
        let authorization = &headers[2].1;
        assert!(
            authorization.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, Signature="
            ),
            "{authorization}"
        );
        // Another body, another signature.
        let other = sign(&CREDENTIALS, &SignedRequest { body: b"{ }", ..request }, datetime!(2015-08-30 12:36:00 UTC));
        assert_ne!(other[2], headers[2]);
    }
}
