//! The end-to-end tests, one module per subject, in one test binary: as a binary each, every
//! file linked the AWS SDKs and the whole program again, which made most of a cold
//! `cargo test`'s time and disk.

mod common;

mod backfill;
mod cli_ingest;
mod cli_load;
mod cli_transform;
mod cloudwatch_run;
mod corpus;
mod ingest_fanout;
mod lake_http;
mod lake_sdk;
mod lossless;
mod pipeline;
mod reliability;
mod reliability_bad_input;
