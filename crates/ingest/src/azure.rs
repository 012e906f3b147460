//! One Azure container, read through Microsoft's SDK: the blobs under a prefix, the directory
//! levels under a prefix, and a byte range of a blob as a stream.
//!
//! The SDK (`azure_storage_blob` 1.1) lists flat only; the directory walk that finds the roots
//! (see [`crate::layout`]) needs `delimiter=/`, so that one request is built here and sent with
//! the SDK's own HTTP client (`azure_core`), authenticated the same way. Every list request is
//! counted: a run's list calls must follow its window, not the container's history.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{Method, Request, Url};
use azure_storage_blob::models::{BlobClientDownloadOptions, BlobContainerClientListBlobsOptions};
use azure_storage_blob::BlobContainerClient;
use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};

use crate::auth::AzureAuth;
use crate::sas::container_sas;

/// The REST version of the hand-built list request (supported by Azure and Azurite).
const LIST_VERSION: &str = "2021-08-06";

/// What the container said about one blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    /// Its name (path) in the container.
    pub name: String,
    /// Its length in bytes.
    pub length: u64,
    /// Its ETag.
    pub etag: String,
    /// Its last-modified time, as Azure wrote it.
    pub last_modified: Option<String>,
    /// When it was created: unchanged by appends, new when the blob is replaced (deleted and
    /// written again), so a replacement is told from growth whatever its length.
    pub created: Option<String>,
}

/// Why Azure could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AzureError {
    /// Credentials could not be turned into a client.
    #[error("Azure credentials for {container}")]
    Auth {
        /// The container.
        container: String,
        /// Why.
        #[source]
        source: aztrail_state::BoxError,
    },
    /// A request failed.
    #[error("Azure {container}: {what}")]
    Request {
        /// The container.
        container: String,
        /// What was asked.
        what: String,
        /// What Azure said.
        #[source]
        source: aztrail_state::BoxError,
    },
}

/// One container of the storage account.
pub struct Container {
    name: String,
    client: BlobContainerClient,
    /// `{account_url}/{container}` without query.
    url: String,
    /// The SAS query, when authenticating by SAS.
    query: Option<String>,
    credential: Option<Arc<dyn TokenCredential>>,
    http: Arc<dyn azure_core::http::HttpClient>,
    list_calls: Arc<AtomicU64>,
}

impl Container {
    /// A client of `container` authenticated by `auth`; SAS tokens minted from a key are valid
    /// for `sas_seconds` from `now` (seconds since the epoch).
    pub fn new(
        auth: &AzureAuth,
        container: &str,
        now: i64,
        sas_seconds: i64,
        list_calls: Arc<AtomicU64>,
    ) -> Result<Self, AzureError> {
        let err = |message: String| AzureError::Auth {
            container: container.to_string(),
            source: message.into(),
        };
        let url = format!("{}/{container}", auth.account_url());
        let (query, credential): (Option<String>, Option<Arc<dyn TokenCredential>>) = match auth {
            AzureAuth::Sas { token, .. } => (Some(token.clone()), None),
            AzureAuth::Key { account, key, .. } => (
                Some(
                    container_sas(account, key, container, now - 300, now + sas_seconds)
                        .map_err(|e| err(e.to_string()))?,
                ),
                None,
            ),
            AzureAuth::ServicePrincipal {
                tenant_id,
                client_id,
                client_secret,
                ..
            } => (
                None,
                Some(
                    service_principal(tenant_id, client_id, client_secret, None)
                        .map_err(|e| err(e.to_string()))?,
                ),
            ),
        };
        let full = match &query {
            Some(q) => format!("{url}?{q}"),
            None => url.clone(),
        };
        let parsed = Url::parse(&full).map_err(|e| err(format!("{url}: {e}")))?;
        let client = BlobContainerClient::new(parsed, credential.clone(), None)
            .map_err(|e| err(e.to_string()))?;
        Ok(Self {
            name: container.to_string(),
            client,
            url,
            query,
            credential,
            http: azure_core::http::new_http_client(None),
            list_calls,
        })
    }

    /// The container's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn request_error(&self, what: String, e: impl Into<aztrail_state::BoxError>) -> AzureError {
        AzureError::Request {
            container: self.name.clone(),
            what,
            source: e.into(),
        }
    }

    /// Every blob whose name starts with `prefix` (flat, through the SDK).
    pub async fn list(&self, prefix: &str) -> Result<Vec<BlobInfo>, AzureError> {
        let options = BlobContainerClientListBlobsOptions {
            prefix: Some(prefix.to_string()),
            ..Default::default()
        };
        let mut pages = self
            .client
            .list_blobs(Some(options))
            .map_err(|e| self.request_error(format!("list {prefix}"), e))?
            .into_pages();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            self.list_calls.fetch_add(1, Ordering::Relaxed);
            let page = page
                .and_then(|p| p.into_model())
                .map_err(|e| self.request_error(format!("list {prefix}"), e))?;
            for item in page.blob_items {
                let (Some(name), Some(props)) = (item.name, item.properties) else {
                    continue;
                };
                out.push(BlobInfo {
                    name,
                    length: props.content_length.unwrap_or(0),
                    etag: props.etag.map(|e| e.to_string()).unwrap_or_default(),
                    last_modified: props.last_modified.map(|t| t.to_string()),
                    created: props.creation_time.map(|t| t.to_string()),
                });
            }
        }
        Ok(out)
    }

    /// The directory levels directly under `prefix` (names ending in `/`).
    pub async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, AzureError> {
        let what = || format!("list directories under {prefix:?}");
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let mut url = Url::parse(&self.url).map_err(|e| self.request_error(what(), e))?;
            {
                let mut q = url.query_pairs_mut();
                q.append_pair("restype", "container")
                    .append_pair("comp", "list")
                    .append_pair("delimiter", "/")
                    .append_pair("prefix", prefix);
                if let Some(m) = &marker {
                    q.append_pair("marker", m);
                }
            }
            if let Some(sas) = &self.query {
                let joined = format!("{}&{sas}", url.query().unwrap_or(""));
                url.set_query(Some(&joined));
            }
            let mut request = Request::new(url, Method::Get);
            request.insert_header("x-ms-version", LIST_VERSION);
            if let Some(c) = &self.credential {
                let token = c
                    .get_token(&[STORAGE_SCOPE], None)
                    .await
                    .map_err(|e| self.request_error(what(), e))?;
                request.insert_header("authorization", format!("Bearer {}", token.token.secret()));
            }
            self.list_calls.fetch_add(1, Ordering::Relaxed);
            let response = self
                .http
                .execute_request(&request)
                .await
                .map_err(|e| self.request_error(what(), e))?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| self.request_error(what(), e))?;
            let text = String::from_utf8_lossy(&body);
            if !status.is_success() {
                return Err(self.request_error(what(), format!("HTTP {status}: {text}")));
            }
            out.extend(xml_values(&text, "BlobPrefix", "Name"));
            marker = xml_values(&text, "EnumerationResults", "NextMarker")
                .into_iter()
                .find(|m| !m.is_empty());
            if marker.is_none() {
                return Ok(out);
            }
        }
    }

    /// Bytes `[start, end)` of `blob`, as a stream of chunks (one request at a time, 4 MiB each).
    pub async fn read_range(
        &self,
        blob: &str,
        start: u64,
        end: u64,
    ) -> Result<impl Stream<Item = Result<Bytes, AzureError>> + Send + Unpin + use<'_>, AzureError>
    {
        let what = format!("read {blob} [{start}, {end})");
        let options = BlobClientDownloadOptions {
            range: Some((start..end).into()),
            parallel: std::num::NonZero::new(1),
            partition_size: std::num::NonZero::new(4 * 1024 * 1024),
            ..Default::default()
        };
        let result = self
            .client
            .blob_client(blob)
            .download(Some(options))
            .await
            .map_err(|e| self.request_error(what.clone(), e))?;
        Ok(result
            .body
            .map_err(move |e| self.request_error(what.clone(), e)))
    }
}

/// An Entra ID client-credentials token source for Azure Storage (`options` sets the HTTP
/// transport or cloud; `None` for Azure's public cloud).
pub fn service_principal(
    tenant_id: &str,
    client_id: &str,
    client_secret: &str,
    options: Option<azure_identity::ClientSecretCredentialOptions>,
) -> azure_core::Result<Arc<dyn TokenCredential>> {
    let c = azure_identity::ClientSecretCredential::new(
        tenant_id,
        client_id.to_string(),
        Secret::new(client_secret.to_string()),
        options,
    )?;
    Ok(c)
}

/// The scope of Azure Storage tokens.
pub const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";

/// The text of every `<inner>` inside an `<outer>` element of `xml`, entity-decoded. Enough for
/// the List Blobs answer, whose names are the only text that needs decoding.
fn xml_values(xml: &str, outer: &str, inner: &str) -> Vec<String> {
    let (open, close) = (format!("<{outer}>"), format!("</{outer}>"));
    let (iopen, iclose) = (format!("<{inner}>"), format!("</{inner}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open).or_else(|| {
        // The root element carries attributes: `<EnumerationResults ServiceEndpoint=…>`.
        rest.find(&format!("<{outer} "))
    }) {
        let after = &rest[i..];
        let end = after.find(&close).unwrap_or(after.len());
        let element = &after[..end];
        if let Some(a) = element.find(&iopen) {
            let value = &element[a + iopen.len()..];
            if let Some(b) = value.find(&iclose) {
                out.push(unescape(&value[..b]));
            }
        }
        rest = &after[end.min(after.len())..];
        if end == after.len() {
            break;
        }
        rest = &rest[close.len().min(rest.len())..];
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_listings_are_read_from_the_xml() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="http://x/" ContainerName="c"><Prefix>resourceId=/</Prefix><Delimiter>/</Delimiter><Blobs><BlobPrefix><Name>resourceId=/SUBSCRIPTIONS/</Name></BlobPrefix><BlobPrefix><Name>a&amp;b/</Name></BlobPrefix></Blobs><NextMarker>2!abc</NextMarker></EnumerationResults>"#;
        assert_eq!(
            xml_values(xml, "BlobPrefix", "Name"),
            ["resourceId=/SUBSCRIPTIONS/", "a&b/"]
        );
        assert_eq!(
            xml_values(xml, "EnumerationResults", "NextMarker"),
            ["2!abc"]
        );
        let last = r#"<EnumerationResults><Blobs></Blobs><NextMarker /></EnumerationResults>"#;
        assert!(xml_values(last, "EnumerationResults", "NextMarker").is_empty());
    }
}

#[cfg(test)]
mod token_tests {
    use super::*;
    use azure_core::http::{
        AsyncRawResponse, Body, ClientOptions, HttpClient, StatusCode, Transport,
    };
    use std::sync::Mutex;

    /// Answers every request with a token, remembering what was asked.
    #[derive(Debug, Default)]
    struct EntraStandIn(Mutex<Vec<(String, String)>>);

    #[async_trait::async_trait]
    impl HttpClient for EntraStandIn {
        async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
            let body = match request.body() {
                Body::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
                _ => String::new(),
            };
            self.0
                .lock()
                .unwrap()
                .push((request.url().to_string(), body));
            Ok(AsyncRawResponse::from_bytes(
                StatusCode::Ok,
                Default::default(),
                r#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"tok-123"}"#,
            ))
        }
    }

    #[tokio::test]
    async fn a_service_principal_asks_entra_for_a_storage_token() {
        let entra = Arc::new(EntraStandIn::default());
        let options = azure_identity::ClientSecretCredentialOptions {
            client_options: ClientOptions {
                transport: Some(Transport::new(entra.clone())),
                ..Default::default()
            },
        };
        let credential = service_principal(
            "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "app-id",
            "s3cret/+=",
            Some(options),
        )
        .unwrap();
        let token = credential.get_token(&[STORAGE_SCOPE], None).await.unwrap();
        assert_eq!(token.token.secret(), "tok-123");
        let asked = entra.0.lock().unwrap().clone();
        assert_eq!(asked.len(), 1);
        let (url, body) = &asked[0];
        assert_eq!(
            url,
            "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token"
        );
        let form: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(body.as_bytes())
                .into_owned()
                .collect();
        assert_eq!(form["grant_type"], "client_credentials");
        assert_eq!(form["client_id"], "app-id");
        assert_eq!(form["client_secret"], "s3cret/+=");
        assert_eq!(form["scope"], STORAGE_SCOPE);
        // The token is cached: a second ask sends nothing.
        credential.get_token(&[STORAGE_SCOPE], None).await.unwrap();
        assert_eq!(entra.0.lock().unwrap().len(), 1);
    }
}
