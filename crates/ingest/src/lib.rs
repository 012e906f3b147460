//! aztrail-ingest: finds new bytes of Azure `PT1H.json` append blobs and stages them in S3.
//!
//! Each run copies only the bytes it has not copied before (from the committed length up to the
//! last complete line) as a new object in the staging bucket, and remembers per blob how far it
//! got, in a checkpoint in the same bucket written with conditional PUTs.
//!
//! - [`layout`]: Azure's blob layout and the staged keys (pure).
//! - [`auth`]: SAS, service principal and account-key credentials; [`sas`] mints SAS from a key.
//! - [`azure`]: one container through Microsoft's SDK, list calls counted.
//! - [`checkpoint`]: per-blob progress in the staging bucket, in day shards, claimed and committed
//!   conditionally; [`migrate`] carries the one-document form of earlier versions over.
//! - [`gate`]: the one limit on a pass's requests in flight.
//! - [`fanout`]: a container's roots in shards on an SQS queue, for many workers.
//! - [`stage`]: one staged object, streamed, single or multipart, created only if absent.
//! - [`run`]: one pass over the containers, and its metrics line.
//! - [`secrets`]: the credentials from AWS Secrets Manager.
//! - [`source`]: the pass's two sides as traits; [`local`]: directories standing in for both;
//!   [`standin`]: memory standing in for both over a slow link, for benchmarks.

pub mod auth;
pub mod azure;
pub mod checkpoint;
pub mod fanout;
pub mod gate;
pub mod layout;
pub mod local;
pub mod migrate;
pub mod run;
pub mod sas;
pub mod secrets;
pub mod settings;
pub mod source;
pub mod stage;
pub mod standin;
