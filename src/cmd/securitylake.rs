//! The Security Lake destination as the commands use it: where the files go (a bucket or a
//! directory, the partition values), checked before anything is read, and the batch loop over
//! objects that `load` and `run` share.

use std::path::{Path, PathBuf};

use anyhow::Context;
use aztrail_load::destination::DestinationSettings;
use aztrail_load::failure::FailureSink;
use aztrail_load::securitylake::queue::{QueueSummary, QueueWorker};
use aztrail_load::securitylake::{BatchError, BatchSummary, LakeLayout, OcsfBatch, Output};
use aztrail_ocsf::Options;
use aztrail_securitylake::FileSettings;
use aztrail_transform::Source;
use tokio::io::AsyncRead;

/// Where and how the files are written.
pub struct LakeTarget {
    /// The keys' layout.
    pub layout: LakeLayout,
    /// A bucket or a directory.
    pub output: Output,
    /// Where batches are spooled.
    pub spool_dir: PathBuf,
}

impl LakeTarget {
    /// From the destination settings: a directory (the flag's, else `default_dir`) or the
    /// bucket, whose access is checked now; the account partition is `--account-id`, else
    /// `default_account`, else the caller's (STS).
    pub async fn open(
        dest: &DestinationSettings,
        shared: &aws_config::SdkConfig,
        s3: &aws_sdk_s3::Client,
        default_dir: Option<&Path>,
        default_account: Option<&str>,
    ) -> anyhow::Result<LakeTarget> {
        let sl = &dest.securitylake;
        let region = sl
            .securitylake_region
            .clone()
            .or_else(|| shared.region().map(|r| r.to_string()))
            .unwrap_or_else(|| "us-east-1".to_string());
        let account = match (&dest.account_id, default_account) {
            (Some(a), _) => a.clone(),
            (None, Some(a)) => a.to_string(),
            (None, None) => dest.account(shared).await?,
        };
        let layout = LakeLayout::new(&sl.securitylake_location, &region, &account)?;
        let output = match (&sl.securitylake_dir, &sl.securitylake_bucket, default_dir) {
            (Some(dir), _, _) => Output::Dir(dir.clone()),
            (None, Some(bucket), _) => {
                s3.head_bucket().bucket(bucket).send().await.map_err(|e| {
                    anyhow::anyhow!(
                        "cannot use s3://{bucket}: {}; nothing was loaded",
                        aztrail_load::error_chain(&e)
                    )
                })?;
                Output::S3 {
                    client: s3.clone(),
                    bucket: bucket.clone(),
                }
            }
            (None, None, Some(dir)) => Output::Dir(dir.to_path_buf()),
            (None, None, None) => {
                anyhow::bail!(aztrail_load::destination::DestinationError::NoLakeBucket)
            }
        };
        if let Output::Dir(d) = &output {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        Ok(LakeTarget {
            layout,
            output,
            spool_dir: std::env::temp_dir(),
        })
    }

    /// Where the files go, for the first lines of a run.
    pub fn describe(&self) -> String {
        let at = self.output.describe("");
        format!(
            "Security Lake files (OCSF 1.1.0 Parquet) under {at} (region={}, accountId={})",
            self.layout.region, self.layout.account
        )
    }

    /// An empty batch for this target.
    pub fn batch(&self, dest: &DestinationSettings) -> Result<OcsfBatch, BatchError> {
        let sl = &dest.securitylake;
        OcsfBatch::new(
            &self.spool_dir,
            sl.limits(),
            FileSettings::default(),
            Options {
                raw_data: sl.ocsf_raw_data,
            },
        )
    }

    /// The queue worker over `queue_url`, batch after batch until the queue is empty
    /// (`until_empty`) or `stop` is set.
    pub async fn drain_queue<F: FailureSink>(
        &self,
        dest: &DestinationSettings,
        aws: &aztrail_load::settings::AwsClients,
        queue_url: &str,
        failures: &F,
        until_empty: bool,
        stop: Option<&aztrail_load::loader::Stop>,
    ) -> anyhow::Result<QueueSummary> {
        let worker = QueueWorker {
            s3: &aws.s3,
            sqs: &aws.sqs,
            queue_url,
            failures,
            layout: &self.layout,
            output: &self.output,
        };
        Ok(worker.run(|| self.batch(dest), until_empty, stop).await?)
    }
}

/// One object to read into a batch.
pub struct Input {
    /// Where its records are, for failure messages and the batch's name.
    pub source: Source,
    /// Its bytes.
    pub body: Box<dyn AsyncRead + Send + Unpin>,
}

/// Reads every input into batches, flushing each when it is full and the last at the end.
/// `acknowledge` is called with the sources of each flushed batch (every record of them in a
/// written file or in `failures`).
pub async fn load_batches<I, F, A>(
    target: &LakeTarget,
    mut batch: OcsfBatch,
    inputs: I,
    failures: &F,
    mut acknowledge: A,
) -> anyhow::Result<BatchSummary>
where
    I: futures::Stream<Item = anyhow::Result<Input>>,
    F: FailureSink,
    A: FnMut(&[Source], &BatchSummary),
{
    use futures::StreamExt;
    let mut total = BatchSummary::default();
    let mut pending: Vec<Source> = Vec::new();
    let mut inputs = std::pin::pin!(inputs);
    while let Some(input) = inputs.next().await {
        let input = input?;
        batch
            .add(&input.source, input.body, failures)
            .await
            .with_context(|| format!("reading {}", input.source.key))?;
        pending.push(input.source);
        if batch.is_full() {
            let s = batch.flush(&target.layout, &target.output).await?;
            acknowledge(&pending, &s);
            pending.clear();
            total.add(&s);
        }
    }
    if !batch.is_empty() {
        let s = batch.flush(&target.layout, &target.output).await?;
        acknowledge(&pending, &s);
        total.add(&s);
    }
    Ok(total)
}
