//! Writing one staged object: a byte stream of known length into S3, created only if absent.
//!
//! Up to `part_size` the bytes go in one PutObject; above, in a multipart upload of `part_size`
//! parts, so memory holds one part whatever the range's size. Both are conditional
//! (`If-None-Match: *`): when a retried run writes a key that exists, S3 refuses, nothing is
//! replaced and no second notification is sent; that is reported as [`Staged::Existed`].

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};

use aztrail_state::is_precondition_failed;

/// How a staged write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Staged {
    /// The object was created.
    Created,
    /// An object with this key already existed (a retried copy); it was left as is.
    Existed,
}

/// Why a staged write failed.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// The source stream failed.
    #[error("reading the source of {key}")]
    Source {
        /// The staged key.
        key: String,
        /// Why.
        #[source]
        source: aztrail_state::BoxError,
    },
    /// The source ended early or ran long.
    #[error("the source of {key} gave {got} bytes, {expected} expected")]
    Length {
        /// The staged key.
        key: String,
        /// Bytes expected.
        expected: u64,
        /// Bytes read.
        got: u64,
    },
    /// S3 failed.
    #[error("writing s3://{bucket}/{key}")]
    S3 {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// What S3 said.
        #[source]
        source: aztrail_state::BoxError,
    },
}

/// Metadata stored on the staged object.
#[derive(Debug, Clone, Default)]
pub struct SourceMeta {
    /// The source blob's ETag.
    pub etag: String,
    /// `start-end` of the source blob.
    pub range: String,
    /// The source blob's last-modified time.
    pub last_modified: Option<String>,
}

/// A multipart upload under way: what is read of its source so far.
struct Upload<'k> {
    key: &'k str,
    len: u64,
    part_size: usize,
    read: u64,
    ended: bool,
}

/// Where and how to write.
#[derive(Debug, Clone)]
pub struct Stager {
    /// The client.
    pub s3: aws_sdk_s3::Client,
    /// The staging bucket.
    pub bucket: String,
    /// Bytes per PutObject or multipart part (at least 5 MiB for multipart).
    pub part_size: usize,
}

impl Stager {
    fn s3_error(&self, key: &str, e: impl Into<aztrail_state::BoxError>) -> StageError {
        StageError::S3 {
            bucket: self.bucket.clone(),
            key: key.to_string(),
            source: e.into(),
        }
    }

    /// Writes `len` bytes from `source` to `key`, unless `key` exists: in one PutObject when they
    /// fit a part, else in a multipart upload.
    pub async fn write<S, E>(
        &self,
        key: &str,
        len: u64,
        meta: &SourceMeta,
        mut source: S,
    ) -> Result<Staged, StageError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::error::Error + Send + Sync + 'static,
    {
        let part_size = self.part_size.max(5 * 1024 * 1024);
        let mut read = 0u64;
        let mut buf = BytesMut::new();
        // Fill the first part; a range that fits goes in one PutObject.
        let ended = fill(&mut source, &mut buf, part_size + 1, &mut read, key).await?;
        if (buf.len() as u64) <= part_size as u64 && read == len {
            return self.put_one(key, meta, buf.freeze()).await;
        }
        if read >= len && buf.len() <= part_size {
            return Err(StageError::Length {
                key: key.into(),
                expected: len,
                got: read,
            });
        }
        let upload = Upload {
            key,
            len,
            part_size,
            read,
            ended,
        };
        self.multipart(upload, meta, source, buf).await
    }

    /// A multipart upload of what `source` still holds after `buf`, completed only if `key` is
    /// still absent; aborted (its parts are billed) unless it created the object.
    async fn multipart<S, E>(
        &self,
        mut upload: Upload<'_>,
        meta: &SourceMeta,
        mut source: S,
        mut buf: BytesMut,
    ) -> Result<Staged, StageError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::error::Error + Send + Sync + 'static,
    {
        let key = upload.key;
        let created = self
            .s3
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .set_metadata(Some(metadata(meta)))
            .send()
            .await
            .map_err(|e| self.s3_error(key, e))?;
        let upload_id = created.upload_id.unwrap_or_default();
        let result = async {
            let parts = self
                .upload_parts(&mut upload, &upload_id, &mut source, &mut buf)
                .await?;
            if upload.read != upload.len {
                return Err(StageError::Length {
                    key: key.into(),
                    expected: upload.len,
                    got: upload.read,
                });
            }
            self.complete(key, &upload_id, parts).await
        }
        .await;
        if !matches!(result, Ok(Staged::Created)) {
            // Leave no parts behind (they are billed); a failed abort is only logged by S3's
            // lifecycle rule for incomplete uploads.
            let _ = self
                .s3
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .send()
                .await;
        }
        result
    }

    /// Uploads `buf` and the rest of `source` in parts of `upload.part_size`.
    async fn upload_parts<S, E>(
        &self,
        upload: &mut Upload<'_>,
        upload_id: &str,
        source: &mut S,
        buf: &mut BytesMut,
    ) -> Result<Vec<CompletedPart>, StageError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::error::Error + Send + Sync + 'static,
    {
        let key = upload.key;
        let mut parts = Vec::new();
        loop {
            if !upload.ended {
                upload.ended = fill(source, buf, upload.part_size, &mut upload.read, key).await?;
            }
            if buf.is_empty() {
                return Ok(parts);
            }
            let body = buf.split_to(buf.len().min(upload.part_size)).freeze();
            let number = parts.len() as i32 + 1;
            let out = self
                .s3
                .upload_part()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(body))
                .send()
                .await
                .map_err(|e| self.s3_error(key, e))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.e_tag)
                    .build(),
            );
        }
    }

    /// Completes the upload if `key` is still absent (`If-None-Match`).
    async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: Vec<CompletedPart>,
    ) -> Result<Staged, StageError> {
        let done = self
            .s3
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .if_none_match("*")
            .send()
            .await;
        match done {
            Ok(_) => Ok(Staged::Created),
            Err(e) if is_precondition_failed(&e) => Ok(Staged::Existed),
            Err(e) => Err(self.s3_error(key, e)),
        }
    }

    async fn put_one(
        &self,
        key: &str,
        meta: &SourceMeta,
        body: Bytes,
    ) -> Result<Staged, StageError> {
        let sent = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .set_metadata(Some(metadata(meta)))
            .content_type("application/x-ndjson")
            .body(ByteStream::from(body))
            .if_none_match("*")
            .send()
            .await;
        match sent {
            Ok(_) => Ok(Staged::Created),
            Err(e) if is_precondition_failed(&e) => Ok(Staged::Existed),
            Err(e) => Err(self.s3_error(key, e)),
        }
    }
}

/// All of `source` in memory (a small range), checked to be the `len` bytes expected.
pub async fn gather<S, E>(key: &str, len: u64, mut source: S) -> Result<Vec<u8>, StageError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::error::Error + Send + Sync + 'static,
{
    let mut body = Vec::with_capacity(usize::try_from(len).unwrap_or(0).min(1 << 20));
    while let Some(chunk) = source.next().await {
        body.extend_from_slice(&chunk.map_err(|e| StageError::Source {
            key: key.into(),
            source: Box::new(e),
        })?);
    }
    if body.len() as u64 != len {
        return Err(StageError::Length {
            key: key.into(),
            expected: len,
            got: body.len() as u64,
        });
    }
    Ok(body)
}

/// Reads `source` into `buf` until it holds `target` bytes or the source ends (then true),
/// counting what was read.
async fn fill<S, E>(
    source: &mut S,
    buf: &mut BytesMut,
    target: usize,
    read: &mut u64,
    key: &str,
) -> Result<bool, StageError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::error::Error + Send + Sync + 'static,
{
    while buf.len() < target {
        match source.next().await {
            Some(Ok(chunk)) => {
                *read += chunk.len() as u64;
                buf.extend_from_slice(&chunk);
            }
            Some(Err(e)) => {
                return Err(StageError::Source {
                    key: key.into(),
                    source: Box::new(e),
                })
            }
            None => return Ok(true),
        }
    }
    Ok(false)
}

fn metadata(meta: &SourceMeta) -> std::collections::HashMap<String, String> {
    let mut m = std::collections::HashMap::new();
    m.insert(
        "source-etag".to_string(),
        meta.etag.trim_matches('"').to_string(),
    );
    m.insert("source-range".to_string(), meta.range.clone());
    if let Some(t) = &meta.last_modified {
        m.insert("source-last-modified".to_string(), t.clone());
    }
    m
}
