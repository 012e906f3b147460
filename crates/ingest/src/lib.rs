//! aztrail-ingest: finds new bytes of Azure `PT1H.json` append blobs and stages them in S3.
//!
//! Each run copies only the bytes it has not copied before (from the committed length up to the
//! last complete line) as a new object in the staging bucket, and remembers per blob how far it got.
//! Not built yet: see the open issue "crates/ingest".
