//! aztrail-lake: a local stand-in for AWS CloudTrail Lake.
//!
//! A PutAuditEvents-compatible HTTP endpoint with faults on demand, an event store and SQL
//! queries, for tests, benchmarks and the embedded default. Not built yet: see the open issue
//! "crates/lake".
