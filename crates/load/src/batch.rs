//! One object's events gathered into batches under its destination's call limits.
//!
//! A batch is what the loader sends, settles and checkpoints as one: at most
//! [`Wire::batch_events`] events whose counted size fits one call, whose times span no more than
//! a call may ([`Wire::max_span_ms`]), and whose ids are distinct (PutAuditEvents fails a whole
//! call that holds an id twice, so a record a writer repeated goes in the next batch). When an
//! event does not fit, the batch is closed and handed out, and the event opens the next.

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

/// Builds batches for one destination.
#[derive(Debug)]
pub struct Batches<T> {
    wire: Wire,
    open: Batch<T>,
    ids: HashSet<String>,
}

impl<T> Batches<T> {
    /// Batches for `wire`.
    pub fn new(wire: Wire) -> Self {
        Self {
            wire,
            open: Self::empty(),
            ids: HashSet::new(),
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

    /// Adds `event`; returns the batch it closed, when it did not join the open one.
    pub fn push(&mut self, tag: T, event: OutEvent) -> Option<Batch<T>> {
        let this = (1, event.size, Some((event.time_ms, event.time_ms)));
        let open = (self.open.items.len(), self.open.bytes, self.open.span);
        let joins = self.open.items.len() < self.wire.batch_events
            && self.wire.fits(open, this)
            && !self.ids.contains(&event.id);
        let closed = if joins { None } else { self.take() };
        self.ids.insert(event.id.clone());
        self.open.bytes += event.size;
        self.open.span = Some(match self.open.span {
            Some((a, b)) => (a.min(event.time_ms), b.max(event.time_ms)),
            None => (event.time_ms, event.time_ms),
        });
        self.open.items.push((tag, event));
        closed
    }

    /// Closes and returns the open batch, if it holds any event.
    pub fn take(&mut self) -> Option<Batch<T>> {
        self.ids.clear();
        if self.open.items.is_empty() {
            return None;
        }
        Some(std::mem::replace(&mut self.open, Self::empty()))
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

        // Span: CloudWatch calls cover 24 hours at most, in either direction.
        let mut w = Batches::new(Wire::CLOUDWATCH);
        let day = 24 * 3600 * 1000;
        assert!(w.push(0, ev("a", 1, 5 * day)).is_none());
        assert!(w.push(1, ev("b", 1, 4 * day)).is_none());
        assert!(w.push(2, ev("c", 1, 5 * day + 1)).is_some());
        let c = w.take().expect("open");
        assert_eq!(c.span, Some((5 * day + 1, 5 * day + 1)));

        // CloudWatch batches hold 1,000 events; counted with 26 bytes each.
        let closed = (0..1001)
            .filter_map(|i| w.push(i, ev(&i.to_string(), 1, 0)))
            .count();
        assert_eq!(closed, 1);
        assert_eq!(Wire::CLOUDWATCH.call_len(10_000, 0), 260_000);
        assert!(!w.sendable(&ev("big", 1_048_576 - 25, 0)));
        assert!(w.sendable(&ev("max", 1_048_576 - 26, 0)));
    }
}
