//! aztrail-load: turns staged S3 objects into CloudTrail Lake events.
//!
//! Reads S3 notifications from SQS, streams each object through `aztrail-transform`, sends
//! PutAuditEvents with bounded concurrency under one rate limit, and writes what was rejected to
//! the failure queue. Not built yet: see the open issue "crates/load".
