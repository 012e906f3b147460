//! OCSF events into Parquet, as Amazon Security Lake takes a custom source's data.
//!
//! - [`schema`]: the fixed Arrow schema of each class.
//! - [`spool`]: a batch of events, spooled to disk by (class, day) and written as one sorted,
//!   zstd-compressed Parquet file each, in bounded memory; and the partition layout
//!   (`region=…/accountId=…/eventDay=…`).
//!
//! Uploading the files, and deciding when a batch closes, is the loader's (`aztrail-load`).

pub mod schema;
pub mod spool;

pub use schema::schema;
pub use spool::{partition_key, FileSettings, Spool, SpoolError, SpoolMark, Written};
