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
    /// Its last-modified time in seconds since the epoch (compared with a pass's [`Mark`]).
    ///
    /// [`Mark`]: crate::checkpoint::Mark
    pub modified: Option<i64>,
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
    /// The account URL and container make no URL.
    #[error("Azure container URL {url}")]
    BadUrl {
        /// The URL, without its query.
        url: String,
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
    /// The directory walk's requests go through the SDK's own pipeline (its retry policy:
    /// exponential backoff on throttling, 5xx and dropped connections), as the SDK's calls do.
    pipeline: azure_core::http::Pipeline,
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
        // The cause is kept as its redacted chain: a client's error can name the SAS URL.
        let err = |e: &(dyn std::error::Error + 'static)| AzureError::Auth {
            container: container.to_string(),
            source: Box::new(crate::sas::Redacted::new(e)),
        };
        let url = format!("{}/{container}", auth.account_url());
        let (query, credential): (Option<String>, Option<Arc<dyn TokenCredential>>) = match auth {
            AzureAuth::Sas { token, .. } => (Some(token.clone()), None),
            AzureAuth::Key { account, key, .. } => (
                Some(
                    container_sas(account, key, container, now - 300, now + sas_seconds)
                        .map_err(|e| err(&e))?,
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
                        .map_err(|e| err(&e))?,
                ),
            ),
        };
        let full = match &query {
            Some(q) => format!("{url}?{q}"),
            None => url.clone(),
        };
        let parsed = Url::parse(&full).map_err(|e| AzureError::BadUrl {
            url: url.clone(),
            source: Box::new(e),
        })?;
        let client =
            BlobContainerClient::new(parsed, credential.clone(), None).map_err(|e| err(&e))?;
        Ok(Self {
            name: container.to_string(),
            client,
            url,
            query,
            credential,
            pipeline: azure_core::http::Pipeline::new(
                option_env!("CARGO_PKG_NAME"),
                option_env!("CARGO_PKG_VERSION"),
                azure_core::http::ClientOptions::default(),
                Vec::new(),
                Vec::new(),
                None,
            ),
            list_calls,
        })
    }

    /// The container's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A failed request. The SDK's error names the request's URL, SAS and all: it is kept
    /// only as redacted text, so no later formatting of it can print the signature.
    fn request_error(&self, what: String, e: impl Into<aztrail_state::BoxError>) -> AzureError {
        let e: aztrail_state::BoxError = e.into();
        AzureError::Request {
            container: self.name.clone(),
            what: crate::sas::redact(&what).into_owned(),
            source: Box::new(crate::sas::Redacted::new(e.as_ref())),
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
                    modified: props.last_modified.map(|t| t.unix_timestamp()),
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
            let send = azure_core::http::PipelineSendOptions {
                skip_checks: true,
                ..Default::default()
            };
            let response = self
                .pipeline
                .send(&azure_core::http::Context::new(), &mut request, Some(send))
                .await
                .map_err(|e| self.request_error(what(), e))?;
            let status = response.status();
            let body = response.into_body();
            if !status.is_success() {
                let text = String::from_utf8_lossy(&body);
                return Err(self.request_error(what(), format!("HTTP {status}: {text}")));
            }
            let (names, next) = parse_listing(&body).map_err(|e| self.request_error(what(), e))?;
            out.extend(names);
            marker = next;
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

/// Why a List Blobs answer could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ListingError {
    /// It is not well-formed XML.
    #[error("the listing is not XML")]
    Xml(#[source] quick_xml::Error),
    /// Its text is not in its declared encoding.
    #[error("the listing's text is not in its encoding")]
    Encoding(#[source] quick_xml::encoding::EncodingError),
    /// An entity XML does not predefine.
    #[error("unknown entity &{0};")]
    Entity(String),
    /// A name sent percent-encoded that does not decode to UTF-8.
    #[error("encoded name {name:?} is not UTF-8 once decoded")]
    EncodedName {
        /// The name as sent.
        name: String,
        /// Why.
        #[source]
        source: std::str::Utf8Error,
    },
}

/// The directory names (`Blobs/BlobPrefix/Name`) and the continuation marker (`NextMarker`,
/// `None` when empty or absent) of one List Blobs answer, read with an XML parser: entities and
/// character references are decoded, and a name Azure sends as `<Name Encoded="true">` (one
/// holding characters XML cannot carry) is percent-decoded, as the service documents.
fn parse_listing(xml: &[u8]) -> Result<(Vec<String>, Option<String>), ListingError> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut path: Vec<Vec<u8>> = Vec::new();
    let (mut names, mut marker) = (Vec::new(), None);
    let (mut text, mut encoded) = (String::new(), false);
    let mut buf = Vec::new();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(ListingError::Xml)?;
        match event {
            Event::Start(e) => {
                encoded = e.name().as_ref() == b"Name"
                    && e.attributes().flatten().any(|a| {
                        a.key.as_ref() == b"Encoded" && a.value.eq_ignore_ascii_case(b"true")
                    });
                path.push(e.name().as_ref().to_vec());
                text.clear();
            }
            Event::Text(t) => text.push_str(&t.decode().map_err(ListingError::Encoding)?),
            Event::CData(t) => text.push_str(&t.decode().map_err(ListingError::Encoding)?),
            Event::GeneralRef(r) => {
                let name = r.decode().map_err(ListingError::Encoding)?;
                match r.resolve_char_ref().map_err(ListingError::Xml)? {
                    Some(c) => text.push(c),
                    None => text.push_str(
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| ListingError::Entity(name.to_string()))?,
                    ),
                }
            }
            Event::End(_) => {
                let inside = |want: &[&[u8]]| {
                    path.len() >= want.len()
                        && path[path.len() - want.len()..]
                            .iter()
                            .zip(want)
                            .all(|(a, b)| a.as_slice() == *b)
                };
                if inside(&[b"BlobPrefix", b"Name"]) {
                    let name = std::mem::take(&mut text);
                    names.push(if encoded {
                        percent_encoding::percent_decode_str(&name)
                            .decode_utf8()
                            .map_err(|source| ListingError::EncodedName {
                                name: name.clone(),
                                source,
                            })?
                            .into_owned()
                    } else {
                        name
                    });
                } else if inside(&[b"EnumerationResults", b"NextMarker"]) && !text.is_empty() {
                    marker = Some(std::mem::take(&mut text));
                }
                path.pop();
            }
            Event::Eof => return Ok((names, marker)),
            _ => {}
        }
        buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_listings_are_read_with_an_xml_parser() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="http://x/" ContainerName="c"><Prefix>resourceId=/</Prefix><Delimiter>/</Delimiter><Blobs><BlobPrefix><Name>resourceId=/SUBSCRIPTIONS/</Name></BlobPrefix><BlobPrefix><Name>a&amp;b&#x2F;c&#233;/</Name></BlobPrefix><BlobPrefix><Name Encoded="true">bad%EF%BF%BEname%2F/</Name></BlobPrefix><Blob><Name>not-a-prefix</Name></Blob></Blobs><NextMarker>2!abc</NextMarker></EnumerationResults>"#;
        let (names, marker) = parse_listing(xml.as_bytes()).expect("parsed");
        assert_eq!(
            names,
            ["resourceId=/SUBSCRIPTIONS/", "a&b/cé/", "bad\u{FFFE}name//"]
        );
        assert_eq!(marker.as_deref(), Some("2!abc"));
        let last = r#"<EnumerationResults><Blobs></Blobs><NextMarker /></EnumerationResults>"#;
        assert_eq!(
            parse_listing(last.as_bytes()).expect("parsed"),
            (Vec::new(), None)
        );
        assert!(parse_listing(b"<EnumerationResults><Blobs>")
            .is_ok_and(|(n, m)| n.is_empty() && m.is_none()));
        assert!(parse_listing(b"<a>&nope;</a>").is_err());
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
