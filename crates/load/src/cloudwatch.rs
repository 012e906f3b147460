//! CloudWatch Logs as the destination, for AWS accounts that cannot use CloudTrail Lake.
//!
//! Each event becomes one log event whose message is the event's `eventData` (the same
//! CloudTrail integration event, `UID` included, so Logs Insights filters on the same field
//! names as CloudTrail Lake SQL) and whose time stamp is the record's own time in milliseconds.
//!
//! Calls follow PutLogEvents' rules ([`Wire::CLOUDWATCH`]): the loader and the pool keep each
//! call within 10,000 events, 1,048,576 counted bytes and 24 hours; this sink puts the events in
//! time order. Events the service refuses one by one (more than 14 days old or older than the
//! group's retention, more than 2 hours ahead) come back as failed with that reason and go to the
//! failure queue; they are not retried.
//!
//! Streams: one per writer (a process, a Lambda instance), named
//! `aztrail/YYYY/MM/DD/<writer>` from the day it started, created on its first call. PutLogEvents
//! has ignored sequence tokens since 2023 and takes parallel calls on one stream, so a stream per
//! writer is enough for writers never to contend; a stream per category as well would split the
//! calls the pool fills from many small objects (a call goes to one stream), for a value every
//! event carries anyway (`eventCategory`, `additionalEventData.category`).

use std::sync::atomic::{AtomicBool, Ordering};

use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata;
use aztrail_transform::time::UtcSeconds;

use crate::sink::{call_error, with_body, CallError, EventSink, OutEvent, PutResult, Wire};

/// How far back CloudWatch Logs takes events: 14 days.
pub const MAX_AGE_MS: i64 = 14 * 24 * 3600 * 1000;
/// How far ahead of now an event's time may be (2 hours).
pub const MAX_AHEAD_MS: i64 = 2 * 3600 * 1000;

/// PutLogEvents into one log stream of one log group.
#[derive(Debug)]
pub struct CloudWatchSink {
    client: aws_sdk_cloudwatchlogs::Client,
    group: String,
    stream: String,
    /// The stream exists (created here, or found to exist).
    ready: AtomicBool,
}

impl CloudWatchSink {
    /// Sends to `stream` (created on the first call) of the existing log group `group`.
    pub fn new(
        client: aws_sdk_cloudwatchlogs::Client,
        group: impl Into<String>,
        stream: impl Into<String>,
    ) -> Self {
        Self {
            client,
            group: group.into(),
            stream: stream.into(),
            ready: AtomicBool::new(false),
        }
    }

    /// The log group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The log stream this writer writes.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// Creates the stream unless it is known to exist. Called before the first load, it checks
    /// the group exists and the credentials may write to it, before anything is read.
    pub async fn ensure_stream(&self) -> Result<(), CallError> {
        if self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let created = self
            .client
            .create_log_stream()
            .log_group_name(&self.group)
            .log_stream_name(&self.stream)
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e) if e.code() == Some("ResourceAlreadyExistsException") => {}
            Err(e) => {
                let mut err = call_error(&e);
                if err.error_type.as_deref() == Some("ResourceNotFoundException") {
                    err.message = format!(
                        "the log group {:?} does not exist (create it, or deploy the module with \
                         destination = \"cloudwatch\"): {}",
                        self.group, err.message
                    );
                }
                return Err(err);
            }
        }
        self.ready.store(true, Ordering::Release);
        Ok(())
    }

    /// The request body: the group, the stream and the events' entries in time order.
    fn body(&self, events: &[OutEvent], order: &[usize]) -> Vec<u8> {
        let names = serde_json::json!({
            "logGroupName": self.group,
            "logStreamName": self.stream,
        })
        .to_string();
        let entries: usize = events.iter().map(|e| e.entry.len() + 1).sum();
        let mut body = Vec::with_capacity(names.len() + entries + 16);
        // `{"logGroupName":…,"logStreamName":…` then `,"logEvents":[…]}`.
        body.extend_from_slice(&names.as_bytes()[..names.len() - 1]);
        body.extend_from_slice(b",\"logEvents\":[");
        for (k, &i) in order.iter().enumerate() {
            if k > 0 {
                body.push(b',');
            }
            body.extend_from_slice(&events[i].entry);
        }
        body.extend_from_slice(b"]}");
        body
    }

    async fn put_once(
        &self,
        events: &[OutEvent],
        order: &[usize],
    ) -> Result<Option<aws_sdk_cloudwatchlogs::types::RejectedLogEventsInfo>, CallError> {
        // As for PutAuditEvents, the body is the events' own bytes, put in place of the SDK's
        // serialization of an empty list before the request is signed.
        let body = bytes::Bytes::from(self.body(events, order));
        self.client
            .put_log_events()
            .log_group_name(&self.group)
            .log_stream_name(&self.stream)
            .set_log_events(Some(Vec::new()))
            .customize()
            .mutate_request(with_body(body))
            .send()
            .await
            .map(|out| out.rejected_log_events_info().cloned())
            .map_err(|e| call_error(&e))
    }
}

impl EventSink for CloudWatchSink {
    fn wire(&self) -> Wire {
        Wire::CLOUDWATCH
    }

    async fn put(&self, events: &[OutEvent]) -> Result<PutResult, CallError> {
        if events.is_empty() {
            return Ok(PutResult::default());
        }
        self.ensure_stream().await?;
        // PutLogEvents takes a call's events in time order only.
        let mut order: Vec<usize> = (0..events.len()).collect();
        order.sort_by_key(|&i| events[i].time_ms);
        let rejected = match self.put_once(events, &order).await {
            Err(e) if e.error_type.as_deref() == Some("ResourceNotFoundException") => {
                // The stream was deleted under us: create it again and send once more.
                self.ready.store(false, Ordering::Release);
                self.ensure_stream().await?;
                self.put_once(events, &order).await?
            }
            other => other?,
        };
        Ok(outcome(events, &order, rejected.as_ref(), now_ms()))
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Which events a call's answer refused, by their place in the time order sent.
///
/// `tooNewLogEventStartIndex` is documented as inclusive (it and every later event were too new),
/// `tooOldLogEventEndIndex` and `expiredLogEventEndIndex` as exclusive (the events before it were
/// refused); some implementations (moto) report the last refused event's index for all three.
/// Each reading is settled by the events' own times: the event at an old index is refused when it
/// is itself more than 14 days old, and the too-new run reaches back over every event more than
/// 2 hours ahead. So no accepted event is reported failed, and no refused one counted accepted.
fn outcome(
    events: &[OutEvent],
    order: &[usize],
    rejected: Option<&aws_sdk_cloudwatchlogs::types::RejectedLogEventsInfo>,
    now_ms: i64,
) -> PutResult {
    let n = order.len();
    let index = |v: Option<i32>| v.and_then(|i| usize::try_from(i).ok());
    let old_before = |end: Option<usize>| match end {
        Some(e) if e < n && events[order[e]].time_ms < now_ms - MAX_AGE_MS => e + 1,
        Some(e) => e.min(n),
        None => 0,
    };
    // The too-new index: documented as the first refused event, but moto reports the last one.
    // Events before it that are themselves more than 2 hours ahead were refused under either
    // reading, so the refused run starts at the first of them.
    let mut too_new_from =
        index(rejected.and_then(|r| r.too_new_log_event_start_index())).map_or(n, |i| i.min(n));
    while too_new_from > 0
        && too_new_from < n
        && events[order[too_new_from - 1]].time_ms > now_ms + MAX_AHEAD_MS
    {
        too_new_from -= 1;
    }
    let too_old_before = old_before(index(
        rejected.and_then(|r| r.too_old_log_event_end_index()),
    ));
    let expired_before = old_before(index(
        rejected.and_then(|r| r.expired_log_event_end_index()),
    ));
    let mut result = PutResult::default();
    for (k, &i) in order.iter().enumerate() {
        let e = &events[i];
        let when = || {
            let secs = e.time_ms.div_euclid(1000);
            UtcSeconds(secs).to_iso()
        };
        let refused = if k < expired_before {
            Some((
                "ExpiredLogEvent",
                format!(
                    "CloudWatch Logs refused the event: its time, {}, is older than the log \
                     group's retention",
                    when()
                ),
            ))
        } else if k < too_old_before {
            Some((
                "TooOldLogEvent",
                format!(
                    "CloudWatch Logs refused the event: its time, {}, is more than 14 days ago \
                     (load it into CloudTrail Lake, or keep it in the failure queue)",
                    when()
                ),
            ))
        } else if k >= too_new_from {
            Some((
                "TooNewLogEvent",
                format!(
                    "CloudWatch Logs refused the event: its time, {}, is more than 2 hours ahead \
                     (redrive it once that time has come)",
                    when()
                ),
            ))
        } else {
            None
        };
        match refused {
            Some((code, message)) => {
                result
                    .failed
                    .push(crate::sink::EventRefused::new(e.id.clone(), code, message))
            }
            None => result.successful.push(e.id.clone()),
        }
    }
    result
}

/// The stream name of a writer that started at `started` (seconds): `aztrail/YYYY/MM/DD/<writer>`,
/// with the characters a stream name cannot hold (`:` and `*`) replaced.
pub fn stream_name(writer: &str, started: UtcSeconds) -> String {
    let day = started.to_iso();
    let writer: String = writer
        .chars()
        .map(|c| if c == ':' || c == '*' { '-' } else { c })
        .take(400)
        .collect();
    format!(
        "aztrail/{}/{}/{}/{writer}",
        &day[0..4],
        &day[5..7],
        &day[8..10]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudwatchlogs::types::RejectedLogEventsInfo;

    fn ev(id: &str, time_ms: i64) -> OutEvent {
        OutEvent {
            id: id.into(),
            entry: format!("{{\"timestamp\":{time_ms},\"message\":\"{{}}\"}}").into_bytes(),
            size: 2,
            time_ms,
        }
    }

    const NOW: i64 = 1_800_000_000_000;
    const DAY: i64 = 24 * 3600 * 1000;

    #[test]
    fn refused_events_are_found_by_their_place_in_time_order_under_either_reading() {
        // Sent out of order: the sink sorts, the answer's indices are into the sorted order.
        let events = [
            ev("new", NOW + 3 * 3600 * 1000),
            ev("ok", NOW - DAY),
            ev("old1", NOW - 20 * DAY),
            ev("old2", NOW - 15 * DAY),
        ];
        let mut order: Vec<usize> = (0..events.len()).collect();
        order.sort_by_key(|&i| events[i].time_ms);
        let failed = |r: &PutResult| r.failed.iter().map(|f| f.id.clone()).collect::<Vec<_>>();

        // The documented reading: the end index is exclusive.
        let aws = RejectedLogEventsInfo::builder()
            .too_old_log_event_end_index(2)
            .too_new_log_event_start_index(3)
            .build();
        let r = outcome(&events, &order, Some(&aws), NOW);
        assert_eq!(failed(&r), ["old1", "old2", "new"]);
        assert_eq!(r.successful, ["ok"]);
        assert_eq!(r.failed[0].code, "TooOldLogEvent");
        assert_eq!(r.failed[2].code, "TooNewLogEvent");
        assert!(
            r.failed[0].message.contains("14 days"),
            "{}",
            r.failed[0].message
        );

        // moto's reading: the index of the last refused event.
        let moto = RejectedLogEventsInfo::builder()
            .too_old_log_event_end_index(1)
            .too_new_log_event_start_index(3)
            .build();
        assert_eq!(outcome(&events, &order, Some(&moto), NOW), r);

        // Nothing refused.
        let none = outcome(&events, &order, None, NOW);
        assert_eq!(none.successful.len(), 4);

        // Several too-new events, with the index of the last one (moto): all of them refused.
        let ahead = [
            ev("ok", NOW - 1000),
            ev("new1", NOW + 2 * 3600 * 1000 + 12 * 60 * 1000),
            ev("new2", NOW + 2 * 3600 * 1000 + 40 * 60 * 1000),
            ev("new3", NOW + 3 * 3600 * 1000),
        ];
        for reported in [1, 3] {
            let info = RejectedLogEventsInfo::builder()
                .too_new_log_event_start_index(reported)
                .build();
            let r = outcome(&ahead, &[0, 1, 2, 3], Some(&info), NOW);
            assert_eq!(failed(&r), ["new1", "new2", "new3"], "index {reported}");
            assert_eq!(r.successful, ["ok"]);
        }

        // Retention: the expired index, exclusive, over events younger than 14 days.
        let young = [ev("a", NOW - 3 * DAY), ev("b", NOW - 2 * DAY), ev("c", NOW)];
        let expired = RejectedLogEventsInfo::builder()
            .expired_log_event_end_index(2)
            .build();
        let r = outcome(&young, &[0, 1, 2], Some(&expired), NOW);
        assert_eq!(failed(&r), ["a", "b"]);
        assert_eq!(r.failed[0].code, "ExpiredLogEvent");
        assert_eq!(r.successful, ["c"]);
    }

    #[test]
    fn stream_names_carry_the_day_and_the_writer() {
        let t = aztrail_transform::time::parse_time("2026-12-02T23:59:59Z").expect("time");
        assert_eq!(stream_name("host:1*2", t), "aztrail/2026/12/02/host-1-2");
    }
}
