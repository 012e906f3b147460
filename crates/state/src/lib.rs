//! aztrail-state: aztrail's own state as small JSON objects in S3.
//!
//! Ingest keeps its checkpoints in day shards (which byte ranges are staged, and who holds the
//! claim), load one per staged object (how far it was loaded). Both are JSON objects read with
//! their ETag and written whole. Ingest writes with S3's conditional writes: `If-None-Match: *`
//! for the first version, `If-Match: <etag>` after, so two runs never overwrite each other
//! ([`StateError::Conflict`]). One implementation for both, with errors that keep their cause.
//! And the one [`Stop`] request both honour.

use serde::{de::DeserializeOwned, Serialize};

mod stop;
pub use stop::Stop;

/// Any error, as the cause of a [`StateError::Store`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error and its causes on one line (`what: why: deeper why`), for messages that leave the
/// process as text (a retry reason, a failure message, a redacted Azure error).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        // Some errors repeat their cause in their own text: say it once.
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

/// Why a state object could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A conditional write found another version (another run wrote it since it was read).
    #[error("{key} changed since it was read (another run)")]
    Conflict {
        /// The object's key.
        key: String,
    },
    /// The store (S3, a file system) failed.
    #[error("{key} could not be read or written")]
    Store {
        /// The object's key.
        key: String,
        /// What failed.
        #[source]
        source: BoxError,
    },
    /// The stored object is not one of ours (or ours could not be serialized).
    #[error("{key} is unreadable")]
    Corrupt {
        /// The object's key.
        key: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

impl StateError {
    /// The store failed on `key`.
    pub fn store(key: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Store {
            key: key.into(),
            source: source.into(),
        }
    }

    /// `key` holds something else.
    pub fn corrupt(key: impl Into<String>, source: serde_json::Error) -> Self {
        Self::Corrupt {
            key: key.into(),
            source,
        }
    }
}

/// How a write is conditioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write<'a> {
    /// Whatever is there.
    Always,
    /// Only if nothing is there yet (`If-None-Match: *`).
    IfAbsent,
    /// Only if the stored version is this ETag (`If-Match`).
    IfMatch(&'a str),
}

impl Write<'_> {
    /// Whether a store whose current version is `current` (`None`: nothing there) takes the
    /// write: what S3 decides, for stores that stand in for it.
    pub fn allows(&self, current: Option<&str>) -> bool {
        match self {
            Write::Always => true,
            Write::IfAbsent => current.is_none(),
            Write::IfMatch(etag) => current == Some(*etag),
        }
    }
}

/// JSON state objects in S3.
#[derive(Debug, Clone)]
pub struct S3Json {
    /// The client.
    pub client: aws_sdk_s3::Client,
}

impl S3Json {
    /// State objects through `client`.
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        Self { client }
    }

    /// The object at `bucket`/`key` and its ETag; `None` when there is none.
    pub async fn get<T: DeserializeOwned>(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<(T, Option<String>)>, StateError> {
        let Some((body, etag)) = self.get_bytes(bucket, key).await? else {
            return Ok(None);
        };
        let value = serde_json::from_slice(&body).map_err(|e| StateError::corrupt(key, e))?;
        Ok(Some((value, etag)))
    }

    /// The bytes of the object at `bucket`/`key` and its ETag; `None` when there is none.
    pub async fn get_bytes(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<(Vec<u8>, Option<String>)>, StateError> {
        let got = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await;
        let out = match got {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(StateError::store(key, e)),
        };
        let etag = out.e_tag.clone();
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| StateError::store(key, e))?
            .into_bytes();
        Ok(Some((body.to_vec(), etag)))
    }

    /// Writes `value` at `bucket`/`key` under `write`'s condition; returns the new ETag.
    pub async fn put<T: Serialize>(
        &self,
        bucket: &str,
        key: &str,
        value: &T,
        write: Write<'_>,
    ) -> Result<String, StateError> {
        let body = serde_json::to_vec(value).map_err(|e| StateError::corrupt(key, e))?;
        self.put_bytes(bucket, key, body, write).await
    }

    /// Writes `body` (JSON) at `bucket`/`key` under `write`'s condition; returns the new ETag.
    pub async fn put_bytes(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        write: Write<'_>,
    ) -> Result<String, StateError> {
        let mut put = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/json")
            .body(body.into());
        put = match write {
            Write::Always => put,
            Write::IfAbsent => put.if_none_match("*"),
            Write::IfMatch(etag) => put.if_match(etag),
        };
        match put.send().await {
            Ok(out) => Ok(out.e_tag.unwrap_or_default()),
            Err(e) if write != Write::Always && is_precondition_failed(&e) => {
                Err(StateError::Conflict {
                    key: key.to_string(),
                })
            }
            Err(e) => Err(StateError::store(key, e)),
        }
    }
}

/// Whether S3 answered 412 Precondition Failed (or 409 ConditionalRequestConflict) to a
/// conditional write.
pub fn is_precondition_failed<E>(
    e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> bool {
    e.raw_response()
        .is_some_and(|r| matches!(r.status().as_u16(), 412 | 409))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_their_cause() {
        let io = std::io::Error::other("disk on fire");
        let e = StateError::store("_aztrail/x.json", io);
        assert_eq!(
            e.to_string(),
            "_aztrail/x.json could not be read or written"
        );
        let cause = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(cause.as_deref(), Some("disk on fire"));
        let json = serde_json::from_str::<u8>("x").expect_err("not JSON");
        let e = StateError::corrupt("k", json);
        assert!(std::error::Error::source(&e).is_some());
    }
}
