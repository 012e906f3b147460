//! Azure audit records → OCSF 1.1.0 events, for Amazon Security Lake and any OCSF store.
//!
//! Pure functions, no I/O, beside the CloudTrail mapping of `aztrail-transform` and sharing its
//! framing, time parsing, IP reading and ids: an event's `metadata.uid` is the same SHA-256 of
//! the raw record as its CloudTrail `UID`, and a record either mapping rejects, the other
//! rejects for the same reason.
//!
//! - [`class`]: the four classes written (one per Security Lake custom source).
//! - [`map`]: the [`OcsfMapper`]; `activity` and `entra` hold the rules per source.
//! - [`record`] and [`unmapped`]: the ledger of what attributes hold, and everything else, so
//!   that each value of a record is in the event.
//! - [`value`]: a JSON value that keeps repeated member names.

mod activity;
pub mod class;
mod entra;
pub mod map;
pub mod record;
pub mod unmapped;
pub mod value;

pub use class::Class;
pub use map::{utc_day, OcsfEvent, OcsfMapper, Options, OCSF_VERSION};

#[cfg(test)]
mod tests;
