//! Batching: packs serialized events into PutAuditEvents request bodies under the API's limits.
//!
//! A body is `{"auditEvents":[e1,e2,...]}` with at most [`MAX_EVENTS_PER_CALL`] events and at most
//! [`MAX_REQUEST_BYTES`] bytes, counted exactly on the bytes that will be sent (so the escaped
//! `eventData`, not the raw one). Events are never split: when the next one does not fit, the
//! current body is closed and handed out, and the event opens the next.

use crate::limits::{MAX_EVENTS_PER_CALL, MAX_REQUEST_BYTES};

const HEAD: &[u8] = b"{\"auditEvents\":[";
const TAIL: &[u8] = b"]}";

/// One request body, ready to send, with what the caller attached to each of its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch<T> {
    /// The complete JSON body.
    pub body: Vec<u8>,
    /// Per event, in order: the caller's tag and the event's byte range in `body`.
    pub items: Vec<(T, std::ops::Range<usize>)>,
}

impl<T> Batch<T> {
    /// Number of events.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the batch holds no event.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The serialized event at index `i`.
    pub fn entry(&self, i: usize) -> Option<&[u8]> {
        self.items.get(i).map(|(_, r)| &self.body[r.clone()])
    }
}

/// An event that can never be sent: alone it exceeds the request limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a serialized event of {size} bytes cannot fit a request of at most {max} bytes")]
pub struct EntryTooLarge {
    /// The event's serialized size.
    pub size: usize,
    /// The largest event that fits.
    pub max: usize,
}

/// Packs serialized events into request bodies.
#[derive(Debug)]
pub struct Batcher<T> {
    max_events: usize,
    max_bytes: usize,
    current: Batch<T>,
    /// Hashes of the ids in the current body (for [`Batcher::push_unique`]).
    ids: Vec<u64>,
}

impl<T> Default for Batcher<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Batcher<T> {
    /// A batcher at the API's limits.
    pub fn new() -> Self {
        Self::with_limits(MAX_EVENTS_PER_CALL, MAX_REQUEST_BYTES)
    }

    /// A batcher with smaller limits (for tests, or to keep calls short).
    pub fn with_limits(max_events: usize, max_bytes: usize) -> Self {
        Self {
            max_events: max_events.clamp(1, MAX_EVENTS_PER_CALL),
            max_bytes: max_bytes.clamp(HEAD.len() + TAIL.len() + 2, MAX_REQUEST_BYTES),
            current: Self::empty(),
            ids: Vec::new(),
        }
    }

    fn empty() -> Batch<T> {
        Batch {
            body: HEAD.to_vec(),
            items: Vec::new(),
        }
    }

    /// The largest single serialized event that fits a request.
    pub fn max_entry(&self) -> usize {
        self.max_bytes - HEAD.len() - TAIL.len()
    }

    /// Adds one serialized event (as written by `Mapped::write_entry`). Returns the previous body
    /// when this event did not fit in it.
    pub fn push(&mut self, entry: &[u8], tag: T) -> Result<Option<Batch<T>>, EntryTooLarge> {
        if entry.len() > self.max_entry() {
            return Err(EntryTooLarge {
                size: entry.len(),
                max: self.max_entry(),
            });
        }
        let sep = usize::from(!self.current.items.is_empty());
        let full = self.current.items.len() == self.max_events
            || self.current.body.len() + sep + entry.len() + TAIL.len() > self.max_bytes;
        let done = if full { self.take() } else { None };
        if !self.current.items.is_empty() {
            self.current.body.push(b',');
        }
        let start = self.current.body.len();
        self.current.body.extend_from_slice(entry);
        self.current
            .items
            .push((tag, start..self.current.body.len()));
        Ok(done)
    }

    /// Like [`Batcher::push`], but keeps `id` unique within a body, as the API requires (a call
    /// with the same id twice fails whole, with `DuplicatedAuditEventId`): an event whose id the
    /// current body holds already closes it and opens the next. The same record twice in one
    /// object (a writer that repeated a line) so goes in two calls, both accepted.
    pub fn push_unique(
        &mut self,
        id: &str,
        entry: &[u8],
        tag: T,
    ) -> Result<Option<Batch<T>>, EntryTooLarge> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        id.hash(&mut h);
        let key = h.finish();
        // A hash collision only closes a body early: one more call, never a wrong one.
        let done = if self.ids.contains(&key) {
            self.take()
        } else {
            None
        };
        let full = self.push(entry, tag)?;
        if full.is_some() {
            self.ids.clear();
        }
        self.ids.push(key);
        Ok(done.or(full))
    }

    /// Closes and returns the current body, if it holds any event.
    pub fn take(&mut self) -> Option<Batch<T>> {
        self.ids.clear();
        if self.current.items.is_empty() {
            return None;
        }
        let mut batch = std::mem::replace(&mut self.current, Self::empty());
        batch.body.extend_from_slice(TAIL);
        Some(batch)
    }

    /// Events waiting in the current body.
    pub fn pending(&self) -> usize {
        self.current.items.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: usize, fill: u8) -> Vec<u8> {
        let mut e = b"{\"id\":\"x\",\"eventData\":\"".to_vec();
        e.extend(std::iter::repeat_n(fill, n));
        e.extend_from_slice(b"\",\"eventDataChecksum\":\"c\"}");
        e
    }

    #[test]
    fn at_most_100_events() {
        let mut b = Batcher::new();
        let mut batches = Vec::new();
        for i in 0..250 {
            if let Some(done) = b.push(&entry(10, b'a'), i).unwrap() {
                batches.push(done);
            }
        }
        batches.extend(b.take());
        assert_eq!(
            batches.iter().map(Batch::len).collect::<Vec<_>>(),
            vec![100, 100, 50]
        );
        for batch in &batches {
            let v: serde_json::Value = serde_json::from_slice(&batch.body).unwrap();
            assert_eq!(v["auditEvents"].as_array().unwrap().len(), batch.len());
        }
        assert_eq!(batches[1].items[0].0, 100);
    }

    #[test]
    fn bodies_never_exceed_the_byte_limit_and_fill_it_exactly() {
        let max = 1000;
        let mut b = Batcher::with_limits(100, max);
        let overhead = entry(0, b'z').len();
        let small = entry(40, b'y');
        let e = entry(
            max - HEAD.len() - TAIL.len() - 1 - small.len() - overhead,
            b'z',
        );
        assert!(b.push(&e, 0).unwrap().is_none());
        assert!(b.push(&small, 1).unwrap().is_none(), "fits exactly");
        let done = b.push(&small, 2).unwrap().expect("third does not fit");
        assert_eq!(done.body.len(), max);
        assert_eq!(done.entry(1), Some(&small[..]));
        assert!(b.push(&entry(max, b'q'), 3).is_err());
    }

    #[test]
    fn an_id_seen_in_the_body_closes_it() {
        let mut b = Batcher::new();
        let mut batches = Vec::new();
        for (i, id) in ["a", "b", "a", "c", "c", "d"].iter().enumerate() {
            if let Some(done) = b.push_unique(id, &entry(10, b'a'), i).unwrap() {
                batches.push(done);
            }
        }
        batches.extend(b.take());
        let tags: Vec<Vec<usize>> = batches
            .iter()
            .map(|b| b.items.iter().map(|(t, _)| *t).collect())
            .collect();
        assert_eq!(tags, vec![vec![0, 1], vec![2, 3], vec![4, 5]]);
    }
}
