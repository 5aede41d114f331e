//! The HTTP plumbing the REST probes share: one client per probe with the request timeout, and
//! JSON GETs whose failures say which URL failed and how.

use serde::de::DeserializeOwned;

use super::{LabService, ProbeError, REQUEST_TIMEOUT};

/// A client whose every request (connect included) gives up after [`REQUEST_TIMEOUT`].
pub fn client(service: LabService) -> Result<reqwest::Client, ProbeError> {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(REQUEST_TIMEOUT)
        // Loopback services; a proxy from the environment would only add a failure mode.
        .no_proxy()
        .build()
        .map_err(|e| ProbeError::Other {
            service,
            detail: format!("cannot build an HTTP client: {e}"),
        })
}

/// `base` + `path` without doubled or missing slashes.
#[must_use]
pub fn join(base: &str, path: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), path.trim_start_matches('/'))
}

pub fn unreachable(service: LabService, url: &str, e: &reqwest::Error) -> ProbeError {
    let detail = if e.is_timeout() {
        format!("no answer within {} ms", REQUEST_TIMEOUT.as_millis())
    } else if e.is_connect() {
        "connection refused (is it running?)".to_string()
    } else {
        e.to_string()
    };
    ProbeError::Unreachable {
        service,
        url: url.to_string(),
        detail,
    }
}

/// Sends `req` and returns a 2xx body; any other status is an error naming the URL.
pub async fn send_bytes(
    service: LabService,
    url: &str,
    req: reqwest::RequestBuilder,
) -> Result<bytes::Bytes, ProbeError> {
    let resp = req.send().await.map_err(|e| unreachable(service, url, &e))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(ProbeError::Status {
            service,
            url: url.to_string(),
            status: status.as_u16(),
        });
    }
    resp.bytes().await.map_err(|e| unreachable(service, url, &e))
}

/// Sends `req` and decodes a 2xx JSON body as `T`.
pub async fn send_json<T: DeserializeOwned>(
    service: LabService,
    url: &str,
    req: reqwest::RequestBuilder,
) -> Result<T, ProbeError> {
    let body = send_bytes(service, url, req).await?;
    parse(service, url, &body)
}

/// Decodes a JSON body, naming the URL when it does not fit.
pub fn parse<T: DeserializeOwned>(service: LabService, url: &str, body: &[u8]) -> Result<T, ProbeError> {
    serde_json::from_slice(body).map_err(|e| ProbeError::Parse {
        service,
        url: url.to_string(),
        detail: e.to_string(),
    })
}

pub async fn get_json<T: DeserializeOwned>(
    client: &reqwest::Client,
    service: LabService,
    url: &str,
) -> Result<T, ProbeError> {
    send_json(service, url, client.get(url)).await
}
