//! Staged objects as byte streams: a GetObject body read as it arrives, decompressed on the fly
//! when the key ends in `.gz`, so memory stays flat whatever the object's size.

use async_compression::tokio::bufread::GzipDecoder;
use tokio::io::{AsyncRead, BufReader};

/// Why an object could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("GetObject s3://{bucket}/{key}: {message}")]
pub struct OpenError {
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// What S3 said.
    pub message: String,
}

/// Opens `s3://bucket/key` for streaming.
pub async fn open(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Box<dyn AsyncRead + Send + Unpin>, OpenError> {
    let out = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| OpenError {
            bucket: bucket.into(),
            key: key.into(),
            message: aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
        })?;
    let body = out.body.into_async_read();
    Ok(if key.ends_with(".gz") {
        Box::new(GzipDecoder::new(BufReader::new(body)))
    } else {
        Box::new(body)
    })
}
