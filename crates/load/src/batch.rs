//! One object's events gathered into batches under its destination's call limits.
//!
//! A batch is what the loader sends, settles and checkpoints as one: at most
//! [`Wire::batch_events`] events whose counted size fits one call, whose times span no more than
//! a call may ([`Wire::max_span_ms`]), and whose ids are distinct (PutAuditEvents fails a whole
//! call that holds an id twice, so a record a writer repeated goes in the next batch). When an
//! event does not fit, the batch is closed and handed out, and the event opens the next.
//!
//! Where a call's times are limited (CloudWatch Logs: 24 hours), events are gathered by UTC day,
//! a batch open per day ([`MAX_OPEN_DAYS`] at most), since any one day fits a call: records in
//! any order (three days shuffled) fill batches as records in time order do, and need at most
//! about twice the fewest calls. Past that many days at once the fullest batch is closed, so
//! memory stays bounded whatever the spread.

use std::collections::HashSet;

use crate::sink::{OutEvent, Wire};

/// A closed batch.
#[derive(Debug)]
pub struct Batch<T> {
    /// The events with the caller's tag for each, in the order pushed.
    pub items: Vec<(T, OutEvent)>,
    /// Their counted sizes, summed.
    pub bytes: usize,
    /// Their oldest and newest time, in milliseconds.
    pub span: Option<(i64, i64)>,
}

/// Days gathered at once, at most (where a call's time span is limited).
pub const MAX_OPEN_DAYS: usize = 4;

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Builds batches for one destination.
#[derive(Debug)]
pub struct Batches<T> {
    wire: Wire,
    /// The open batches: one, or one per UTC day (`key`) when the wire limits a call's span.
    open: Vec<Open<T>>,
}

#[derive(Debug)]
struct Open<T> {
    key: i64,
    batch: Batch<T>,
    ids: HashSet<String>,
}

impl<T> Batches<T> {
    /// Batches for `wire`.
    pub fn new(wire: Wire) -> Self {
        Self {
            wire,
            open: Vec::new(),
        }
    }

    fn empty() -> Batch<T> {
        Batch {
            items: Vec::new(),
            bytes: 0,
            span: None,
        }
    }

    /// Whether `event` can ever be sent (alone, it fits a call).
    pub fn sendable(&self, event: &OutEvent) -> bool {
        event.size <= self.wire.max_event_bytes
            && self.wire.call_len(1, event.size) <= self.wire.max_call_bytes
    }

    /// Adds `event`; returns the batch it closed, when it did not join an open one (or when a
    /// day's batch had to make room for a new day's).
    pub fn push(&mut self, tag: T, event: OutEvent) -> Option<Batch<T>> {
        let key = match self.wire.max_span_ms {
            Some(_) => event.time_ms.div_euclid(DAY_MS),
            None => 0,
        };
        let mut closed = None;
        let at = match self.open.iter().position(|o| o.key == key) {
            Some(at) => {
                let o = &self.open[at];
                let this = (1, event.size, Some((event.time_ms, event.time_ms)));
                let open = (o.batch.items.len(), o.batch.bytes, o.batch.span);
                let joins = o.batch.items.len() < self.wire.batch_events
                    && self.wire.fits(open, this)
                    && !o.ids.contains(&event.id);
                if !joins {
                    let o = &mut self.open[at];
                    o.ids.clear();
                    closed = Some(std::mem::replace(&mut o.batch, Self::empty()));
                }
                at
            }
            None => {
                if self.open.len() >= MAX_OPEN_DAYS {
                    // Room for the new day: the fullest day's batch goes.
                    let fullest = (0..self.open.len())
                        .max_by_key(|&i| self.open[i].batch.items.len())
                        .unwrap_or(0);
                    closed = Some(self.open.swap_remove(fullest).batch);
                }
                self.open.push(Open {
                    key,
                    batch: Self::empty(),
                    ids: HashSet::new(),
                });
                self.open.len() - 1
            }
        };
        let o = &mut self.open[at];
        o.ids.insert(event.id.clone());
        o.batch.bytes += event.size;
        o.batch.span = Some(match o.batch.span {
            Some((a, b)) => (a.min(event.time_ms), b.max(event.time_ms)),
            None => (event.time_ms, event.time_ms),
        });
        o.batch.items.push((tag, event));
        closed
    }

    /// The first tag of each open batch (the first record each holds).
    pub fn open_heads(&self) -> impl Iterator<Item = &T> {
        self.open
            .iter()
            .filter_map(|o| o.batch.items.first().map(|(t, _)| t))
    }

    /// Closes and returns an open batch that holds any event; `None` once none does. Call it
    /// until `None` to close them all.
    pub fn take(&mut self) -> Option<Batch<T>> {
        while let Some(o) = self.open.pop() {
            if !o.batch.items.is_empty() {
                return Some(o.batch);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str, size: usize, time_ms: i64) -> OutEvent {
        OutEvent {
            id: id.into(),
            entry: vec![b'x'; size],
            size,
            time_ms,
        }
    }

    #[test]
    fn batches_close_on_count_size_span_and_a_repeated_id() {
        let mut b = Batches::new(Wire::CLOUDTRAIL);
        let closed: Vec<_> = (0..250)
            .filter_map(|i| b.push(i, ev(&i.to_string(), 10, 0)))
            .collect();
        assert_eq!(
            closed.iter().map(|c| c.items.len()).collect::<Vec<_>>(),
            [100, 100]
        );
        assert_eq!(b.take().map(|c| c.items.len()), Some(50));
        assert!(b.take().is_none());

        // Size: two events of 600,000 bytes do not share a CloudTrail call.
        assert!(b.push(0, ev("a", 600_000, 0)).is_none());
        let c = b.push(1, ev("b", 600_000, 0)).expect("closed by size");
        assert_eq!((c.items.len(), c.bytes), (1, 600_000));
        b.take();

        // A repeated id closes the batch.
        assert!(b.push(0, ev("a", 1, 0)).is_none());
        assert!(b.push(1, ev("a", 1, 0)).is_some());
        b.take();

        // Span: CloudWatch calls cover 24 hours at most: events are gathered by UTC day, so
        // days in any order still share batches, and no batch spans two days.
        let mut w = Batches::new(Wire::CLOUDWATCH);
        let day = 24 * 3600 * 1000;
        assert!(w.push(0, ev("a", 1, 5 * day)).is_none());
        assert!(w.push(1, ev("b", 1, 4 * day)).is_none());
        assert!(w.push(2, ev("c", 1, 5 * day + 1)).is_none());
        let mut spans: Vec<_> = std::iter::from_fn(|| w.take()).map(|c| c.span).collect();
        spans.sort();
        assert_eq!(
            spans,
            [Some((4 * day, 4 * day)), Some((5 * day, 5 * day + 1))]
        );

        // CloudWatch batches hold 1,000 events; counted with 26 bytes each.
        let closed = (0..1001)
            .filter_map(|i| w.push(i, ev(&i.to_string(), 1, 0)))
            .count();
        assert_eq!(closed, 1);
        assert_eq!(Wire::CLOUDWATCH.call_len(10_000, 0), 260_000);
        assert!(!w.sendable(&ev("big", 1_048_576 - 25, 0)));
        assert!(w.sendable(&ev("max", 1_048_576 - 26, 0)));
    }

    #[test]
    fn records_over_three_days_in_any_order_fill_batches() {
        // #22 item 6: 12,415 records over three days, shuffled, went out two per call.
        let day = 24 * 3600 * 1000;
        let n = 12_415i64;
        let mut times: Vec<i64> = (0..n).map(|i| 10 * day + i * (3 * day / n)).collect();
        let mut rng = fastrand::Rng::with_seed(5);
        rng.shuffle(&mut times);
        let mut w = Batches::new(Wire::CLOUDWATCH);
        let mut closed: Vec<Batch<i64>> = times
            .iter()
            .enumerate()
            .filter_map(|(i, &t)| w.push(i as i64, ev(&i.to_string(), 100, t)))
            .collect();
        closed.extend(std::iter::from_fn(|| w.take()));
        // The fewest: 1,000 events per batch.
        let fewest = (n as usize).div_ceil(Wire::CLOUDWATCH.batch_events);
        assert!(
            closed.len() <= 2 * fewest,
            "{} batches, fewest {fewest}",
            closed.len()
        );
        for b in &closed {
            let (a, z) = b.span.expect("a span");
            assert!(z - a < day, "a batch spans {} ms", z - a);
        }
        assert_eq!(
            closed.iter().map(|b| b.items.len()).sum::<usize>(),
            n as usize
        );
    }

    #[test]
    fn past_the_open_days_memory_stays_bounded() {
        let day = 24 * 3600 * 1000;
        let mut w = Batches::new(Wire::CLOUDWATCH);
        let mut closed = 0;
        for i in 0..100i64 {
            closed += usize::from(w.push(i, ev(&i.to_string(), 1, (i % 10) * day)).is_some());
            assert!(w.open.len() <= MAX_OPEN_DAYS);
        }
        closed += std::iter::from_fn(|| w.take()).count();
        assert!(closed > 10, "{closed}");
    }
}
