//! The ground floor of aztrail: Azure audit records in, CloudTrail Lake integration events out.
//!
//! Pure functions over byte slices: no I/O, no async, no cloud SDK. The other crates feed it bytes
//! (from a blob, an S3 object or a file) and send what it produces.
//!
//! - [`framing`] splits a PT1H.json byte stream into records, incrementally.
//! - [`mapping`] turns one record into one event (`id`, `eventData`, and `eventDataChecksum` when
//!   asked), or a typed [`Rejection`] that says why not.
//! - [`limits`], [`time`], [`ip`], [`json`], [`escape`], [`fields`], [`uid`] and
//!   [`sha256_lanes`] are the pieces those are built from.
//! - [`synth`] generates realistic records, deterministically, for `aztrail gen`, the embedded
//!   example, tests and benchmarks (no production path draws on it).

pub mod escape;
pub mod fields;
pub mod framing;
pub mod ip;
pub mod json;
pub mod limits;
pub mod mapping;
pub mod sha256_lanes;
pub mod synth;
pub mod time;
pub mod uid;

pub use framing::{frame_all, Framer, Record};
pub use mapping::{Mapped, Mapper, Parser, Rejection, Source};
