//! How ingest authenticates to Azure Storage, and where the credentials come from.
//!
//! Three ways, as a Secrets Manager secret (JSON, or a bare connection string or SAS URL) or, for
//! local use, the environment:
//! - a SAS: `{"sasUrl": "https://acct.blob.core.windows.net/?sv=…"}` or
//!   `{"accountUrl": "…", "sasToken": "sv=…"}`, used as is;
//! - an Entra ID service principal: `{"accountUrl", "tenantId", "clientId", "clientSecret"}`;
//! - an account-key connection string: `{"connectionString": "…AccountKey=…"}`. The key never
//!   leaves the process: each run mints a short-lived read-and-list service SAS per container
//!   from it ([`crate::sas`]) and sends only that.
//!
//! Secrets are never logged: `Debug` shows the kind and account URL only.

use std::fmt;

use serde::Deserialize;

/// Azure Storage credentials.
#[derive(Clone, PartialEq, Eq)]
pub enum AzureAuth {
    /// A SAS token for the account (or for each container: the same token is used for all).
    Sas {
        /// `https://acct.blob.core.windows.net` (or an emulator's `http://host:port/acct`).
        account_url: String,
        /// The token, without the leading `?`.
        token: String,
    },
    /// The account key, from which container SAS tokens are minted in process.
    Key {
        /// The blob endpoint.
        account_url: String,
        /// The account name.
        account: String,
        /// The key, base64 as Azure shows it.
        key: String,
    },
    /// An Entra ID service principal (client credentials).
    ServicePrincipal {
        /// The blob endpoint (https).
        account_url: String,
        /// The directory (tenant) id.
        tenant_id: String,
        /// The application (client) id.
        client_id: String,
        /// The client secret.
        client_secret: String,
    },
}

impl fmt::Debug for AzureAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            AzureAuth::Sas { .. } => "Sas",
            AzureAuth::Key { .. } => "Key",
            AzureAuth::ServicePrincipal { .. } => "ServicePrincipal",
        };
        write!(f, "AzureAuth::{kind}({})", self.account_url())
    }
}

/// Credentials that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A connection string without what is needed.
    #[error("connection string: {0}")]
    ConnectionString(String),
    /// A secret in none of the known shapes.
    #[error("Azure credentials: {0}")]
    Shape(&'static str),
    /// A secret that starts like JSON but is not (where, never what: it may hold a key).
    #[error("Azure credentials: not valid JSON at line {line}, column {column}")]
    NotJson {
        /// The line.
        line: usize,
        /// The column.
        column: usize,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecretJson {
    connection_string: Option<String>,
    sas_url: Option<String>,
    sas_token: Option<String>,
    account_url: Option<String>,
    tenant_id: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

impl AzureAuth {
    /// The blob endpoint, without a trailing `/`.
    pub fn account_url(&self) -> &str {
        match self {
            AzureAuth::Sas { account_url, .. }
            | AzureAuth::Key { account_url, .. }
            | AzureAuth::ServicePrincipal { account_url, .. } => account_url,
        }
    }

    /// The storage account's name: from the endpoint's host (`acct.blob.core.windows.net`) or,
    /// for emulators, its first path segment (`http://127.0.0.1:10000/devstoreaccount1`).
    pub fn account_name(&self) -> String {
        if let AzureAuth::Key { account, .. } = self {
            return account.clone();
        }
        let url = self.account_url();
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let first = path.split('/').next().unwrap_or("");
        if !first.is_empty() {
            first.to_string()
        } else {
            host.split('.').next().unwrap_or(host).to_string()
        }
    }

    /// Reads a secret: JSON in one of the shapes above, a bare connection string or a SAS URL.
    pub fn from_secret(text: &str) -> Result<Self, AuthError> {
        let text = text.trim();
        if text.starts_with('{') {
            let j: SecretJson = serde_json::from_str(text).map_err(|e| AuthError::NotJson {
                line: e.line(),
                column: e.column(),
            })?;
            if let Some(cs) = j.connection_string {
                return Self::from_connection_string(&cs);
            }
            if let Some(url) = j.sas_url {
                return Self::from_sas_url(&url);
            }
            let Some(account_url) = j.account_url else {
                return Err(AuthError::Shape(
                    "expected connectionString, sasUrl, or accountUrl with sasToken or tenantId, clientId and clientSecret",
                ));
            };
            let account_url = account_url.trim_end_matches('/').to_string();
            if let Some(token) = j.sas_token {
                return Ok(AzureAuth::Sas {
                    account_url,
                    token: token.trim_start_matches('?').to_string(),
                });
            }
            return match (j.tenant_id, j.client_id, j.client_secret) {
                (Some(tenant_id), Some(client_id), Some(client_secret)) => {
                    Ok(AzureAuth::ServicePrincipal {
                        account_url,
                        tenant_id,
                        client_id,
                        client_secret,
                    })
                }
                _ => Err(AuthError::Shape(
                    "accountUrl needs sasToken, or tenantId, clientId and clientSecret",
                )),
            };
        }
        if text.starts_with("http://") || text.starts_with("https://") {
            return Self::from_sas_url(text);
        }
        Self::from_connection_string(text)
    }

    /// `https://acct.blob.core.windows.net/?sv=…` (a container in the path is ignored).
    pub fn from_sas_url(url: &str) -> Result<Self, AuthError> {
        let (base, token) = url
            .split_once('?')
            .ok_or(AuthError::Shape("a SAS URL has a ?sv=… query"))?;
        Ok(AzureAuth::Sas {
            account_url: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
        })
    }

    /// `DefaultEndpointsProtocol=https;AccountName=…;AccountKey=…;EndpointSuffix=…`, or with
    /// `BlobEndpoint=…`, or `…;SharedAccessSignature=…`, or `UseDevelopmentStorage=true`.
    pub fn from_connection_string(cs: &str) -> Result<Self, AuthError> {
        let mut fields = std::collections::HashMap::new();
        for (n, part) in cs
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .enumerate()
        {
            // The segment itself is never echoed: it may be (part of) a key or a signature.
            let (k, v) = part.split_once('=').ok_or_else(|| {
                AuthError::ConnectionString(format!(
                    "segment {} ({} characters) is not key=value",
                    n + 1,
                    part.chars().count()
                ))
            })?;
            fields.insert(k.to_ascii_lowercase(), v.to_string());
        }
        if fields.get("usedevelopmentstorage").map(String::as_str) == Some("true") {
            return Ok(AzureAuth::Key {
                account_url: "http://127.0.0.1:10000/devstoreaccount1".into(),
                account: "devstoreaccount1".into(),
                key: AZURITE_KEY.into(),
            });
        }
        let account = fields.get("accountname").cloned();
        let account_url = match (fields.get("blobendpoint"), &account) {
            (Some(e), _) => e.trim_end_matches('/').to_string(),
            (None, Some(a)) => format!(
                "{}://{a}.blob.{}",
                fields
                    .get("defaultendpointsprotocol")
                    .map_or("https", String::as_str),
                fields
                    .get("endpointsuffix")
                    .map_or("core.windows.net", String::as_str)
            ),
            (None, None) => {
                return Err(AuthError::ConnectionString(
                    "neither BlobEndpoint nor AccountName".into(),
                ))
            }
        };
        if let Some(sas) = fields.get("sharedaccesssignature") {
            return Ok(AzureAuth::Sas {
                account_url,
                token: sas.trim_start_matches('?').to_string(),
            });
        }
        match (account, fields.get("accountkey")) {
            (Some(account), Some(key)) => Ok(AzureAuth::Key {
                account_url,
                account,
                key: key.clone(),
            }),
            _ => Err(AuthError::ConnectionString(
                "needs AccountName and AccountKey, or SharedAccessSignature".into(),
            )),
        }
    }
}

/// Azurite's well-known development key (public; it opens nothing but a local emulator).
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_strings() {
        let a = AzureAuth::from_connection_string(
            "DefaultEndpointsProtocol=https;AccountName=logs01;AccountKey=a2V5;EndpointSuffix=core.windows.net",
        )
        .unwrap();
        assert_eq!(a.account_url(), "https://logs01.blob.core.windows.net");
        assert_eq!(a.account_name(), "logs01");
        let azurite = AzureAuth::from_secret(&format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
        ))
        .unwrap();
        assert_eq!(
            azurite.account_url(),
            "http://127.0.0.1:10000/devstoreaccount1"
        );
        assert!(matches!(azurite, AzureAuth::Key { .. }));
        let sas = AzureAuth::from_connection_string(
            "BlobEndpoint=https://x.blob.core.windows.net/;SharedAccessSignature=sv=2022-11-02&sig=abc",
        )
        .unwrap();
        assert_eq!(
            sas,
            AzureAuth::Sas {
                account_url: "https://x.blob.core.windows.net".into(),
                token: "sv=2022-11-02&sig=abc".into()
            }
        );
        assert!(AzureAuth::from_connection_string("AccountName=x").is_err());
        let err = AzureAuth::from_connection_string("AccountKey")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("AccountKey=") && err.contains("not key=value"));
    }

    #[test]
    fn secrets_in_every_shape() {
        let sp = AzureAuth::from_secret(
            r#"{"accountUrl":"https://logs.blob.core.windows.net/","tenantId":"t","clientId":"c","clientSecret":"s3cret"}"#,
        )
        .unwrap();
        assert!(
            matches!(sp, AzureAuth::ServicePrincipal { ref tenant_id, .. } if tenant_id == "t")
        );
        assert_eq!(sp.account_url(), "https://logs.blob.core.windows.net");
        assert!(
            !format!("{sp:?}").contains("s3cret"),
            "Debug shows no secret"
        );
        let url = AzureAuth::from_secret("https://logs.blob.core.windows.net/?sv=1&sig=2").unwrap();
        assert_eq!(
            url,
            AzureAuth::Sas {
                account_url: "https://logs.blob.core.windows.net".into(),
                token: "sv=1&sig=2".into()
            }
        );
        let tok = AzureAuth::from_secret(
            r#"{"accountUrl":"http://127.0.0.1:10000/devstoreaccount1","sasToken":"?sv=1"}"#,
        )
        .unwrap();
        assert_eq!(tok.account_name(), "devstoreaccount1");
        assert!(AzureAuth::from_secret(r#"{"accountUrl":"https://x"}"#).is_err());
        assert!(AzureAuth::from_secret("{not json").is_err());
    }
}
