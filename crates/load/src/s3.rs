//! Staged objects as byte streams: a GetObject body read as it arrives, decompressed on the fly
//! when the key ends in `.gz`, so memory stays flat whatever the object's size.

use async_compression::tokio::bufread::GzipDecoder;
use tokio::io::{AsyncRead, BufReader};

/// Why an object could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("GetObject s3://{bucket}/{key}")]
pub struct OpenError {
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// What S3 said.
    #[source]
    pub source: aztrail_state::BoxError,
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
            source: Box::new(e),
        })?;
    Ok(decompressed(key, out.body.into_async_read()))
}

/// `reader` as its object's records: gunzipped when `name` ends in `.gz`. Every member of a
/// multi-member gzip (what `cat a.gz b.gz` and many writers produce) is read, not only the first.
pub fn decompressed<R>(name: &str, reader: R) -> Box<dyn AsyncRead + Send + Unpin>
where
    R: AsyncRead + Send + Unpin + 'static,
{
    if name.ends_with(".gz") {
        let mut decoder = GzipDecoder::new(BufReader::new(reader));
        decoder.multiple_members(true);
        Box::new(decoder)
    } else {
        Box::new(reader)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use tokio::io::AsyncReadExt;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[tokio::test]
    async fn every_member_of_a_concatenated_gzip_is_read() {
        let mut joined = gzip(b"{\"a\":1}\n");
        joined.extend(gzip(b"{\"b\":2}\n"));
        joined.extend(gzip(b""));
        joined.extend(gzip(b"{\"c\":3}\n"));
        let mut out = String::new();
        decompressed("x.jsonl.gz", std::io::Cursor::new(joined))
            .read_to_string(&mut out)
            .await
            .unwrap();
        assert_eq!(out, "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n");
    }
}
