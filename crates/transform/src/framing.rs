//! Framing: splits the bytes of a `PT1H.json` blob into records, incrementally.
//!
//! Azure writes JSON Lines (one record per line) since 2018-11-01 and a single
//! `{"records":[...]}` document before that; documentation samples are sometimes one pretty-printed
//! record or a JSON array; the Activity Log REST API writes pages, `{"value":[...],"nextLink":…}`
//! (a backfill). The [`Framer`] accepts all of them from a stream of chunks of any size and
//! hands out each complete record with its byte offset in the stream; an incomplete tail is kept for
//! the next chunk and handed out by [`Framer::finish`] at the end, so nothing is ever dropped here
//! (a truncated record is rejected later, by the parser, with its offset).
//!
//! JSON Lines are split on the byte `\n` only: JSON forbids a raw line feed inside a string, and
//! U+2028, U+0085 and `\r` are never treated as line breaks, so a record is never split inside a
//! string. A UTF-8 byte-order mark at offset 0, CRLF endings, surrounding blanks and blank lines are
//! skipped. When an array (or a `{"records":[...]}` document) closes, framing goes on with whatever
//! follows it, whatever its layout: data after a document is framed, never discarded.
//!
//! Every byte is scanned once, and memory is bounded: a record longer than the maximum record
//! length ([`DEFAULT_MAX_RECORD_LEN`] unless set) is never buffered whole. It is passed over to its
//! end (the next line feed, or the end of its JSON value) and handed out as an oversized
//! [`Record`] with its offset and length and no bytes, so the caller can report it.

use memchr::{memchr, memchr2};

/// The default maximum length of one record: far above any record Azure writes (diagnostic
/// settings deliver at most about 1 MB per record), small enough to bound a reader's memory.
pub const DEFAULT_MAX_RECORD_LEN: usize = 8 << 20;

/// One complete record: its raw bytes (trimmed of surrounding blanks and the line ending) and the
/// byte offset of its first byte in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Offset of the record's first byte from the start of the stream (as given to
    /// [`Framer::with_start_offset`]).
    pub offset: u64,
    /// The record's bytes, as they were in the input (empty when `oversize` is set).
    pub bytes: &'a [u8],
    /// Set when the record's bytes were passed over, not kept: its length in the stream. That is
    /// a record longer than the framer's maximum record length, or a [`Record::stray`] member.
    pub oversize: Option<u64>,
    /// Set for a member of an Activity Log REST API page other than `value` (an array) and
    /// `nextLink`: not a record, but handed out (by offset and length) so it is reported, never
    /// dropped.
    pub stray: bool,
    /// The SHA-256 of `bytes`, when the framer computed it (see [`Framer::with_digests`]).
    pub sha256: Option<[u8; 32]>,
}

impl<'a> Record<'a> {
    /// A record of `bytes` starting at stream offset `offset`.
    pub fn new(offset: u64, bytes: &'a [u8]) -> Self {
        Self {
            offset,
            bytes,
            oversize: None,
            stray: false,
            sha256: None,
        }
    }

    /// How many bytes of the stream the record spans.
    pub fn len(&self) -> u64 {
        self.oversize.unwrap_or(self.bytes.len() as u64)
    }

    /// Whether the record spans no bytes (never true of a record handed out by the framer).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The layout of the input, found from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One record per line (PT1H.json since 2018-11-01).
    Lines,
    /// Elements of a JSON array: the legacy `{"records":[...]}` document or a bare `[...]`.
    Array,
    /// A sequence of (possibly pretty-printed, multi-line) JSON values.
    Document,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";
/// How far ahead the layout detection looks for `{"records":[` before settling on JSON Lines.
const DETECT_WINDOW: usize = 4096;

/// Incremental splitter of a PT1H.json byte stream into records.
///
/// ```
/// use aztrail_transform::framing::Framer;
/// let mut framer = Framer::new();
/// let mut offsets = Vec::new();
/// framer.feed(b"{\"a\":1}\r\n{\"b\"", |r| offsets.push(r.offset));
/// framer.feed(b":2}\n", |r| offsets.push(r.offset));
/// framer.finish(|r| offsets.push(r.offset));
/// assert_eq!(offsets, vec![0, 9]);
/// ```
#[derive(Debug)]
pub struct Framer {
    /// Bytes received but not yet handed out (at most one pending record, or the first bytes while
    /// the layout is not known).
    buf: Vec<u8>,
    /// Stream offset of `buf[0]`.
    buf_offset: u64,
    scanner: Scanner,
    /// Whether records are hashed in batches before they are handed out.
    digests: bool,
}

#[derive(Debug)]
struct Scanner {
    layout: Option<Layout>,
    /// Whether the stream starts at offset 0 (a BOM is only looked for there).
    at_stream_start: bool,
    /// The current array is the `records` member of a `{"records":[...]}` document, or a
    /// `value` member of an Activity Log REST API page.
    wrapped: Wrapper,
    /// A `records` array just closed: the document's `}` is expected next.
    close_wrapper: Wrapper,
    /// Inside an Activity Log REST API page, outside its `value` arrays.
    page: Option<PageAt>,
    /// Progress through the value being scanned (array and document layouts).
    value: ValueScan,
    /// How many bytes of the pending record (at the start of the unconsumed bytes) were scanned
    /// already, so that no byte is scanned twice.
    scanned: usize,
    /// An oversized record being passed over.
    skip: Option<Skip>,
    /// Records longer than this are passed over.
    max_record: usize,
}

/// An oversized record being passed over: where it started, how long it is so far, and whether
/// it holds anything but blanks (a long run of blanks is not a record).
#[derive(Debug, Clone, Copy)]
struct Skip {
    offset: u64,
    len: u64,
    nonblank: bool,
}

impl Default for Framer {
    fn default() -> Self {
        Self::new()
    }
}

impl Framer {
    /// A framer for a stream that starts at the beginning of a blob.
    pub fn new() -> Self {
        Self::with_start_offset(0)
    }

    /// A framer for a stream that starts `offset` bytes into a blob (a staged byte range).
    /// Offsets of records are reported from there; a range that does not start at 0 is read as
    /// JSON Lines, since only JSON Lines blobs grow.
    pub fn with_start_offset(offset: u64) -> Self {
        Self {
            buf: Vec::new(),
            buf_offset: offset,
            scanner: Scanner {
                layout: if offset == 0 {
                    None
                } else {
                    Some(Layout::Lines)
                },
                at_stream_start: offset == 0,
                wrapped: Wrapper::None,
                close_wrapper: Wrapper::None,
                page: None,
                value: ValueScan::default(),
                scanned: 0,
                skip: None,
                max_record: DEFAULT_MAX_RECORD_LEN,
            },
            digests: false,
        }
    }

    /// Sets the maximum record length (at least 1): longer records are handed out as oversized,
    /// without their bytes.
    pub fn with_max_record_len(mut self, max: usize) -> Self {
        self.scanner.max_record = max.max(1);
        self
    }

    /// Hands out every record with its SHA-256 ([`Record::sha256`]) where this CPU hashes many
    /// records at once faster than one ([`crate::sha256_lanes`]): records are then held back a
    /// few dozen at a time (within one call of [`Framer::feed`] or [`Framer::finish`], never
    /// across calls) and hashed together. Elsewhere this does nothing, and the mapping hashes
    /// each record itself.
    pub fn with_digests(mut self) -> Self {
        self.digests = crate::sha256_lanes::available();
        self
    }

    /// Frames `data` as the whole stream: [`Framer::feed`], then [`Framer::finish`].
    pub fn frame_whole<F: FnMut(Record<'_>)>(mut self, data: &[u8], mut emit: F) {
        self.feed(data, &mut emit);
        self.finish(&mut emit);
    }

    /// The layout found so far (`None` until enough bytes were seen).
    pub fn layout(&self) -> Option<Layout> {
        self.scanner.layout
    }

    /// Bytes held back because they do not yet form a complete record.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Feeds the next chunk; `emit` is called for every record completed by it, in order.
    pub fn feed<F: FnMut(Record<'_>)>(&mut self, chunk: &[u8], mut emit: F) {
        if self.buf.is_empty() {
            // Fast path: frame straight from the caller's chunk and keep only its tail.
            let used = scan(
                &mut self.scanner,
                self.digests,
                chunk,
                self.buf_offset,
                false,
                &mut emit,
            );
            self.buf.extend_from_slice(&chunk[used..]);
            self.buf_offset += used as u64;
            return;
        }
        self.buf.extend_from_slice(chunk);
        self.drain(false, &mut emit);
    }

    /// Ends the stream: hands out whatever is left (a last line without a line feed, or a
    /// truncated record, which the parser will then reject with its offset).
    pub fn finish<F: FnMut(Record<'_>)>(&mut self, mut emit: F) {
        self.drain(true, &mut emit);
        self.buf_offset += self.buf.len() as u64;
        self.buf.clear();
    }

    fn drain<F: FnMut(Record<'_>)>(&mut self, eof: bool, emit: &mut F) {
        let used = scan(
            &mut self.scanner,
            self.digests,
            &self.buf,
            self.buf_offset,
            eof,
            emit,
        );
        self.buf.drain(..used);
        self.buf_offset += used as u64;
    }
}

/// Runs the scanner over `data`, through a [`Digesting`] batch when `digests` is set.
fn scan<F: FnMut(Record<'_>)>(
    scanner: &mut Scanner,
    digests: bool,
    data: &[u8],
    base: u64,
    eof: bool,
    emit: &mut F,
) -> usize {
    if !digests {
        return scanner.process(data, base, eof, emit);
    }
    let mut batch = Digesting::new(emit);
    let used = scanner.process(data, base, eof, &mut |r| batch.push(r));
    batch.flush();
    used
}

/// Records held back to be hashed together, then handed out in their order.
struct Digesting<'d, 'e, F> {
    held: [Record<'d>; HELD_MOST],
    len: usize,
    bytes: usize,
    emit: &'e mut F,
}

impl<'d, 'e, F: FnMut(Record<'_>)> Digesting<'d, 'e, F> {
    fn new(emit: &'e mut F) -> Self {
        Self {
            held: [Record::new(0, &[]); HELD_MOST],
            len: 0,
            bytes: 0,
            emit,
        }
    }

    fn push(&mut self, record: Record<'d>) {
        self.held[self.len] = record;
        self.len += 1;
        self.bytes += record.bytes.len();
        if self.len == self.held.len() || self.bytes >= HELD_BYTES {
            self.flush();
        }
    }

    /// Hashes the records held (those with bytes) and hands every one out.
    fn flush(&mut self) {
        let held = &mut self.held[..self.len];
        let mut inputs: [&[u8]; HELD_MOST] = [&[]; HELD_MOST];
        let mut digests = [[0u8; 32]; HELD_MOST];
        let mut n = 0;
        for r in held.iter().filter(|r| r.oversize.is_none()) {
            inputs[n] = r.bytes;
            n += 1;
        }
        crate::sha256_lanes::digest_all(&inputs[..n], &mut digests[..n]);
        let mut digests = digests.iter();
        for r in held.iter_mut() {
            if r.oversize.is_none() {
                r.sha256 = digests.next().copied();
            }
            (self.emit)(*r);
        }
        self.len = 0;
        self.bytes = 0;
    }
}

/// At most this many records are held for hashing: enough to keep the lanes busy as records end.
const HELD_MOST: usize = 64;
/// Or this many bytes: the mapping reads the records again, best from the cache.
const HELD_BYTES: usize = 256 << 10;

/// Frames a whole buffer at once (a convenience over [`Framer`]).
pub fn frame_all<F: FnMut(Record<'_>)>(data: &[u8], emit: F) {
    Framer::new().frame_whole(data, emit);
}

/// The end of the last complete line in `data` (just after its `\n`), or 0 if there is none:
/// the bytes of a growing JSON Lines blob that are safe to copy or parse.
pub fn complete_lines_len(data: &[u8]) -> usize {
    memchr::memrchr(b'\n', data).map_or(0, |i| i + 1)
}

fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn has_nonblank(bytes: &[u8]) -> bool {
    bytes.iter().any(|&b| !is_blank(b))
}

fn trim(bytes: &[u8]) -> (usize, &[u8]) {
    let start = bytes
        .iter()
        .position(|&b| !is_blank(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| !is_blank(b))
        .map_or(start, |i| i + 1);
    (start, &bytes[start..end])
}

fn oversize(offset: u64, len: u64) -> Record<'static> {
    Record {
        offset,
        bytes: &[],
        oversize: Some(len),
        stray: false,
        sha256: None,
    }
}

impl Scanner {
    /// Hands out the complete records in `data` (whose first byte is at stream offset `base`) and
    /// returns how many bytes were consumed.
    fn process<'d, F: FnMut(Record<'d>)>(
        &mut self,
        data: &'d [u8],
        base: u64,
        eof: bool,
        emit: &mut F,
    ) -> usize {
        let mut pos = 0;
        loop {
            if self.skip.is_some() {
                pos += self.pass_over(&data[pos..], eof, emit);
                if self.skip.is_some() || pos == data.len() {
                    return pos;
                }
            }
            if self.at_stream_start {
                let rest = &data[pos..];
                if rest.len() < BOM.len() && BOM.starts_with(rest) && !eof {
                    return pos;
                }
                if rest.starts_with(BOM) {
                    pos += BOM.len();
                }
                self.at_stream_start = false;
            }
            if self.page.is_some() && self.layout.is_none() {
                let (used, more) = self.page_member(&data[pos..], base + pos as u64, eof, emit);
                pos += used;
                if more {
                    return pos;
                }
                continue;
            }
            let layout = match self.layout {
                Some(layout) => layout,
                None => {
                    // Blanks before a layout is known are consumed, never buffered.
                    while pos < data.len() && is_blank(data[pos]) {
                        pos += 1;
                    }
                    if pos == data.len() {
                        return pos;
                    }
                    if std::mem::replace(&mut self.close_wrapper, Wrapper::None) != Wrapper::None
                        && data[pos] == b'}'
                    {
                        pos += 1;
                        continue;
                    }
                    match detect_layout(&data[pos..], eof, self.max_record) {
                        Some((_, skip, Wrapper::Page)) => {
                            // A page: its members are read one by one after its `{`.
                            self.page = Some(PageAt::Member);
                            pos += skip;
                            continue;
                        }
                        Some((layout, skip, wrapped)) => {
                            self.layout = Some(layout);
                            self.wrapped = wrapped;
                            self.scanned = 0;
                            pos += skip;
                            layout
                        }
                        None => return pos,
                    }
                }
            };
            match layout {
                Layout::Lines => {
                    return pos + self.lines(&data[pos..], base + pos as u64, eof, emit)
                }
                Layout::Array | Layout::Document => {
                    let (used, closed) =
                        self.values(layout, &data[pos..], base + pos as u64, eof, emit);
                    pos += used;
                    if !closed {
                        return pos;
                    }
                    // The array is over: what follows is framed on its own (a page's next
                    // member, a document's `}`, or whatever comes).
                    self.layout = None;
                    if self.wrapped == Wrapper::Records {
                        self.close_wrapper = Wrapper::Records;
                    }
                    self.wrapped = Wrapper::None;
                }
            }
        }
    }

    /// Passes over the bytes of an oversized record up to its end; hands it out when the end is
    /// found (or the stream ends). Returns the bytes consumed.
    fn pass_over<'d, F: FnMut(Record<'d>)>(
        &mut self,
        data: &'d [u8],
        eof: bool,
        emit: &mut F,
    ) -> usize {
        let Some(mut skip) = self.skip.take() else {
            return 0;
        };
        let (used, end) = match self.layout {
            Some(Layout::Lines) | None => match memchr(b'\n', data) {
                Some(k) => (k + 1, Some(k)),
                None => (data.len(), None),
            },
            Some(_) => match self.value.run(data) {
                Some(k) => (k, Some(k)),
                None => (data.len(), None),
            },
        };
        let body = &data[..end.unwrap_or(data.len())];
        skip.len += body.len() as u64;
        skip.nonblank = skip.nonblank || has_nonblank(body);
        if end.is_some() || eof {
            if skip.nonblank {
                emit(oversize(skip.offset, skip.len));
            }
            self.value = ValueScan::default();
        } else {
            self.skip = Some(skip);
        }
        used
    }

    /// JSON Lines: every `\n`-terminated line that is not blank is a record.
    fn lines<'d, F: FnMut(Record<'d>)>(
        &mut self,
        data: &'d [u8],
        base: u64,
        eof: bool,
        emit: &mut F,
    ) -> usize {
        let mut pos = 0;
        // The pending line's first bytes were scanned by an earlier call.
        let mut from = self.scanned.min(data.len());
        while let Some(nl) = memchr(b'\n', &data[from..]) {
            let end = from + nl;
            self.emit_line(&data[pos..end], base + pos as u64, emit);
            pos = end + 1;
            from = pos;
        }
        self.scanned = 0;
        let rest = &data[pos..];
        if eof {
            if !rest.is_empty() {
                self.emit_line(rest, base + pos as u64, emit);
            }
            return data.len();
        }
        if rest.len() > self.max_record {
            self.skip = Some(Skip {
                offset: base + pos as u64,
                len: rest.len() as u64,
                nonblank: has_nonblank(rest),
            });
            return data.len();
        }
        self.scanned = rest.len();
        pos
    }

    #[inline]
    fn emit_line<'d, F: FnMut(Record<'d>)>(&self, line: &'d [u8], offset: u64, emit: &mut F) {
        if line.len() > self.max_record {
            if has_nonblank(line) {
                emit(oversize(offset, line.len() as u64));
            }
            return;
        }
        // Common case first: a record starts with `{` and ends with `}` (or `}\r`).
        let mut end = line.len();
        if end > 0 && line[end - 1] == b'\r' {
            end -= 1;
        }
        if end > 0 && line[0] == b'{' && line[end - 1] == b'}' {
            emit(Record::new(offset, &line[..end]));
            return;
        }
        let (lead, rec) = trim(line);
        if !rec.is_empty() {
            emit(Record::new(offset + lead as u64, rec));
        }
    }

    /// Array and document layouts: one record per top-level value (per element for arrays).
    /// Returns the bytes consumed and whether the array closed.
    fn values<'d, F: FnMut(Record<'d>)>(
        &mut self,
        layout: Layout,
        data: &'d [u8],
        base: u64,
        eof: bool,
        emit: &mut F,
    ) -> (usize, bool) {
        let mut pos = 0;
        loop {
            if !self.value.started {
                // Between values: skip blanks and separators.
                while pos < data.len() && (is_blank(data[pos]) || data[pos] == b',') {
                    pos += 1;
                }
                if pos == data.len() {
                    return (pos, false);
                }
                if layout == Layout::Array && data[pos] == b']' {
                    return (pos + 1, true);
                }
                self.scanned = 0;
            }
            let from = (pos + self.scanned).min(data.len());
            match self.value.run(&data[from..]) {
                Some(k) => {
                    let end = from + k;
                    let value = &data[pos..end];
                    if value.len() > self.max_record {
                        emit(oversize(base + pos as u64, value.len() as u64));
                    } else {
                        emit(Record::new(base + pos as u64, value));
                    }
                    self.value = ValueScan::default();
                    self.scanned = 0;
                    pos = end;
                }
                None if eof => {
                    let (lead, rest) = trim(&data[pos..]);
                    if rest.len() > self.max_record {
                        emit(oversize(base + (pos + lead) as u64, rest.len() as u64));
                    } else if !rest.is_empty() {
                        emit(Record::new(base + (pos + lead) as u64, rest));
                    }
                    self.value = ValueScan::default();
                    self.scanned = 0;
                    return (data.len(), false);
                }
                None => {
                    let rest = data.len() - pos;
                    self.scanned = 0;
                    if rest > self.max_record {
                        // The scan state stays: passing over ends where the value ends.
                        self.skip = Some(Skip {
                            offset: base + pos as u64,
                            len: rest as u64,
                            nonblank: true,
                        });
                        return (data.len(), false);
                    }
                    self.scanned = rest;
                    return (pos, false);
                }
            }
        }
    }
}

/// Where framing stands inside a REST API page, outside its `value` arrays.
#[derive(Debug, Clone, Copy)]
enum PageAt {
    /// Before a member, or before the page's closing `}`.
    Member,
    /// Passing over a member that holds no records.
    Passing(Passing),
}

/// A page's member being passed over: `nextLink`, or a stray that is handed out at its end.
#[derive(Debug, Clone, Copy)]
struct Passing {
    scan: ValueScan,
    offset: u64,
    len: u64,
    stray: bool,
}

fn stray(offset: u64, len: u64) -> Record<'static> {
    Record {
        offset,
        bytes: &[],
        oversize: Some(len),
        stray: true,
        sha256: None,
    }
}

impl Scanner {
    /// Inside a page, outside its `value` arrays: reads the next member. A `value` array's
    /// elements are then framed as records (by [`Scanner::values`]); `nextLink` is passed over;
    /// any other member is passed over and handed out as a stray, to be reported. Returns the
    /// bytes consumed and whether more bytes are needed before framing can go on.
    fn page_member<'d, F: FnMut(Record<'d>)>(
        &mut self,
        data: &'d [u8],
        base: u64,
        eof: bool,
        emit: &mut F,
    ) -> (usize, bool) {
        match self.page {
            None => (0, false),
            Some(PageAt::Passing(mut p)) => {
                let found = p.scan.run(data);
                // A member that is a lone `]` ends where it starts: take it in, so framing moves
                // on. (An end found at 0 later on is the `,` or `}` after the member.)
                let used = match found {
                    Some(0) if p.len == 0 => 1,
                    Some(k) => k,
                    None => data.len(),
                };
                p.len += used as u64;
                if found.is_some() || eof {
                    if p.stray {
                        emit(stray(p.offset, p.len));
                    }
                    // At the end of the stream inside a page, the page is over too.
                    self.page = found.map(|_| PageAt::Member);
                } else {
                    self.page = Some(PageAt::Passing(p));
                }
                (used, found.is_none())
            }
            Some(PageAt::Member) => {
                let mut i = 0;
                while i < data.len() && (is_blank(data[i]) || data[i] == b',') {
                    i += 1;
                }
                let Some(&b) = data.get(i) else {
                    if eof {
                        self.page = None;
                    }
                    return (i, true);
                };
                if b == b'}' {
                    self.page = None;
                    return (i + 1, false);
                }
                match member_head(&data[i..], eof) {
                    None => (i, true),
                    Some(Head::ValueArray(skip)) => {
                        self.layout = Some(Layout::Array);
                        self.wrapped = Wrapper::Page;
                        self.value = ValueScan::default();
                        self.scanned = 0;
                        (i + skip, false)
                    }
                    Some(Head::Other { stray }) => {
                        self.page = Some(PageAt::Passing(Passing {
                            scan: ValueScan::member(),
                            offset: base + i as u64,
                            len: 0,
                            stray,
                        }));
                        (i, false)
                    }
                }
            }
        }
    }
}

/// What an array of records stands in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wrapper {
    /// Nothing: a bare `[...]` (or no array).
    None,
    /// The legacy `{"records":[...]}` document.
    Records,
    /// A page of the Activity Log REST API, `{"value":[...],"nextLink":...}`.
    Page,
}

/// Finds the layout from the first bytes after the BOM and blanks. Returns it with the number of
/// bytes to skip (the `{"records":[` or `[` prefix of an array, or the `{` of a page) and what
/// the array is wrapped in (`Wrapper::Page`: a page starts, read member by member), or `None`
/// when more bytes are needed. `window` is the longest a record can be.
fn detect_layout(data: &[u8], eof: bool, window: usize) -> Option<(Layout, usize, Wrapper)> {
    let first = data.iter().position(|&b| !is_blank(b));
    let Some(first) = first else {
        return if eof {
            Some((Layout::Lines, 0, Wrapper::None))
        } else {
            None
        };
    };
    match data[first] {
        b'[' => return Some((Layout::Array, first + 1, Wrapper::None)),
        b'{' => {}
        _ => return Some((Layout::Lines, 0, Wrapper::None)),
    }
    // `{` ws "records" ws : ws [  -> the legacy wrapped document; `"value"` or `"nextLink"`
    // first -> perhaps a REST page, which the whole object decides.
    let mut p = first + 1;
    let skip_blanks = |p: &mut usize| {
        while *p < data.len() && is_blank(data[*p]) {
            *p += 1;
        }
    };
    skip_blanks(&mut p);
    let have = &data[p.min(data.len())..];
    let mut matched = None;
    for (want, wrapper) in [
        (&b"\"records\""[..], Wrapper::Records),
        (&b"\"value\""[..], Wrapper::Page),
        (&b"\"nextLink\""[..], Wrapper::Page),
    ] {
        let n = have.len().min(want.len());
        if have[..n] == want[..n] {
            if n < want.len() {
                return need_more(data, eof);
            }
            matched = Some((want.len(), wrapper));
        }
    }
    let Some((len, wrapper)) = matched else {
        return first_line_layout(data, first, eof);
    };
    if wrapper == Wrapper::Page {
        return match page_verdict(&data[first..], eof, window)? {
            true => Some((Layout::Array, first + 1, Wrapper::Page)),
            false => first_line_layout(data, first, eof),
        };
    }
    p += len;
    skip_blanks(&mut p);
    match data.get(p) {
        None => return need_more(data, eof),
        Some(b':') => p += 1,
        Some(_) => return first_line_layout(data, first, eof),
    }
    skip_blanks(&mut p);
    match data.get(p) {
        None => need_more(data, eof),
        Some(b'[') => Some((Layout::Array, p + 1, wrapper)),
        Some(_) => first_line_layout(data, first, eof),
    }
}

/// Whether the object at the start of `data` (whose first key is `value` or `nextLink`) is an
/// Activity Log REST API page: an object with at least one `value` array and no member but
/// `value` arrays and `nextLink`. A record that happens to start with such a key has other
/// members and is kept whole. Decided within the first `window` bytes (no record is longer); an
/// object still undecided there is read as a page, member by member, so each of its members
/// is framed or reported. `None`: more bytes are needed.
fn page_verdict(data: &[u8], eof: bool, window: usize) -> Option<bool> {
    let w = &data[..data.len().min(window)];
    let ends_here = eof || data.len() >= window;
    let undecided = || ends_here.then_some(true);
    let mut i = 1; // past the `{`
    let mut arrays = 0;
    loop {
        while i < w.len() && (is_blank(w[i]) || w[i] == b',') {
            i += 1;
        }
        let Some(&b) = w.get(i) else {
            return undecided();
        };
        if b == b'}' {
            return Some(arrays > 0);
        }
        let value_start = match member_head(&w[i..], ends_here) {
            None => return undecided(),
            Some(Head::Other { stray: true }) => return Some(false),
            Some(Head::Other { stray: false }) => {
                // `nextLink`: pass over the whole member.
                match ValueScan::member().run(&w[i..]) {
                    Some(k) => {
                        i += k;
                        continue;
                    }
                    None => return undecided(),
                }
            }
            Some(Head::ValueArray(skip)) => i + skip - 1,
        };
        arrays += 1;
        match ValueScan::default().run(&w[value_start..]) {
            Some(k) => i = value_start + k,
            None => return undecided(),
        }
    }
}

/// How a member of a page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Head {
    /// `"value"` ws `:` ws `[`: the array's elements start this many bytes in.
    ValueArray(usize),
    /// Any other member: `nextLink` (`stray: false`) or one that is not a page's.
    Other { stray: bool },
}

/// Reads the start of a page's member (`data` starts at its first byte). `None`: more bytes are
/// needed; `ends_here`: none will come, so what is still undecided is a stray.
fn member_head(data: &[u8], ends_here: bool) -> Option<Head> {
    let w = &data[..data.len().min(DETECT_WINDOW)];
    let ends_here = ends_here || data.len() >= DETECT_WINDOW;
    let undecided = || ends_here.then_some(Head::Other { stray: true });
    let stray = Some(Head::Other { stray: true });
    if w.first() != Some(&b'"') {
        return stray;
    }
    // A page's keys are plain: a name with an escape is neither `value` nor `nextLink`.
    let Some(k) = memchr2(b'"', b'\\', &w[1..]) else {
        return undecided();
    };
    let key_end = 1 + k;
    if w[key_end] == b'\\' {
        return stray;
    }
    match &w[1..key_end] {
        b"nextLink" => Some(Head::Other { stray: false }),
        b"value" => {
            let mut p = key_end + 1;
            let mut colon = false;
            loop {
                match w.get(p) {
                    None => return undecided(),
                    Some(&b) if is_blank(b) => p += 1,
                    Some(b':') if !colon => {
                        colon = true;
                        p += 1;
                    }
                    Some(b'[') if colon => return Some(Head::ValueArray(p + 1)),
                    Some(_) => return stray,
                }
            }
        }
        _ => stray,
    }
}

fn need_more(data: &[u8], eof: bool) -> Option<(Layout, usize, Wrapper)> {
    if eof || data.len() >= DETECT_WINDOW {
        Some((Layout::Lines, 0, Wrapper::None))
    } else {
        None
    }
}

/// A first line that is only `{` starts a pretty-printed document; anything else is JSON Lines.
fn first_line_layout(data: &[u8], first: usize, eof: bool) -> Option<(Layout, usize, Wrapper)> {
    let window = &data[first..data.len().min(first + DETECT_WINDOW)];
    let Some(nl) = memchr(b'\n', window) else {
        return need_more(data, eof);
    };
    let (_, line) = trim(&window[..nl]);
    if line == b"{" {
        Some((Layout::Document, 0, Wrapper::None))
    } else {
        Some((Layout::Lines, 0, Wrapper::None))
    }
}

/// Resumable scan for the end of one JSON value, tracking nesting and strings (with escapes), so
/// brackets inside strings are not counted. It checks structure only; the parser validates. Fed
/// the value's bytes in pieces, each byte once.
#[derive(Debug, Default, Clone, Copy)]
struct ValueScan {
    /// The value's first byte was seen.
    started: bool,
    depth: u64,
    in_string: bool,
    /// The previous byte inside a string was a backslash.
    escaped: bool,
    /// The value is a scalar (number, literal); it ends at a delimiter.
    scalar: bool,
    /// Scanning one member of an object (from its key, at depth 1): it ends before the `,` or
    /// `}` that follows it, which are left unconsumed.
    member: bool,
}

impl ValueScan {
    /// A scan of one member of an object, from the first byte of its key.
    fn member() -> Self {
        Self {
            started: true,
            depth: 1,
            member: true,
            ..Self::default()
        }
    }

    /// Continues over `data`, the bytes that follow those already scanned; returns the index in
    /// `data` just past the value's end once it is complete.
    fn run(&mut self, data: &[u8]) -> Option<usize> {
        let mut i = 0;
        if !self.started {
            match data.first()? {
                b'{' | b'[' => self.depth = 1,
                b'"' => self.in_string = true,
                _ => self.scalar = true,
            }
            self.started = true;
            i = 1;
        }
        while i < data.len() {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                    i += 1;
                    continue;
                }
                match memchr2(b'"', b'\\', &data[i..]) {
                    None => return None,
                    Some(k) => {
                        i += k;
                        if data[i] == b'\\' {
                            self.escaped = true;
                        } else {
                            self.in_string = false;
                            if self.depth == 0 {
                                return Some(i + 1);
                            }
                        }
                        i += 1;
                    }
                }
                continue;
            }
            let b = data[i];
            if self.scalar {
                if is_blank(b) || matches!(b, b',' | b']' | b'}' | b'{' | b'[') {
                    return Some(i);
                }
                i += 1;
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b',' | b'}' | b']' if self.member && self.depth == 1 => return Some(i),
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        return Some(i + 1);
                    }
                }
                _ => {}
            }
            i += 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(data: &[u8]) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        frame_all(data, |r| out.push((r.offset, r.bytes.to_vec())));
        out
    }

    fn chunked(data: &[u8], size: usize) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        let mut f = Framer::new();
        for c in data.chunks(size.max(1)) {
            f.feed(c, |r| out.push((r.offset, r.bytes.to_vec())));
        }
        f.finish(|r| out.push((r.offset, r.bytes.to_vec())));
        out
    }

    fn recs(v: &[(u64, Vec<u8>)]) -> Vec<&str> {
        v.iter()
            .map(|(_, b)| std::str::from_utf8(b).unwrap())
            .collect()
    }

    #[test]
    fn json_lines_with_crlf_bom_and_blank_lines() {
        let data = b"\xEF\xBB\xBF{\"a\":1}\r\n\r\n  \n{\"b\":2}\r\n";
        let got = collect(data);
        assert_eq!(recs(&got), vec!["{\"a\":1}", "{\"b\":2}"]);
        assert_eq!(got[0].0, 3);
        assert_eq!(got[1].0, 17);
    }

    #[test]
    fn partial_last_line_is_kept_until_finish() {
        let mut f = Framer::new();
        let mut out = Vec::new();
        f.feed(b"{\"a\":1}\n{\"b\":", |r| out.push(r.bytes.to_vec()));
        assert_eq!(out.len(), 1);
        assert_eq!(f.pending(), 5);
        f.finish(|r| out.push(r.bytes.to_vec()));
        assert_eq!(out[1], b"{\"b\":");
    }

    #[test]
    fn line_separators_inside_strings_do_not_split() {
        let data = "{\"m\":\"a\u{2028}b\u{0085}c\rd\"}\n{\"n\":1}\n".as_bytes();
        let got = collect(data);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].1, "{\"m\":\"a\u{2028}b\u{0085}c\rd\"}".as_bytes());
    }

    #[test]
    fn legacy_records_document() {
        let data = b"{ \r\n  \"records\" : [ \r\n {\"a\":\"x]}\\\"\"},\r\n {\"b\":[1,{\"c\":2}]}\r\n ]\r\n}\r\n";
        let got = collect(data);
        assert_eq!(
            recs(&got),
            vec!["{\"a\":\"x]}\\\"\"}", "{\"b\":[1,{\"c\":2}]}"]
        );
        assert_eq!(&data[got[1].0 as usize..][..4], b"{\"b\"");
        for size in 1..data.len() {
            assert_eq!(chunked(data, size), got, "chunk size {size}");
        }
    }

    #[test]
    fn records_document_on_one_line() {
        let got = collect(b"{\"records\":[{\"a\":1},{\"b\":2}]}");
        assert_eq!(recs(&got), vec!["{\"a\":1}", "{\"b\":2}"]);
    }

    #[test]
    fn pretty_printed_single_record() {
        let data = b"{\n   \"a\": {\n      \"b\": \"}\"\n   }\n}\n";
        let got = collect(data);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 0);
        assert_eq!(got[0].1, &data[..data.len() - 1]);
    }

    #[test]
    fn bare_array_and_scalars() {
        let got = collect(b"[{\"a\":1}, 2, \"s\" ,null]");
        assert_eq!(recs(&got), vec!["{\"a\":1}", "2", "\"s\"", "null"]);
    }

    #[test]
    fn broken_array_element_keeps_the_rest() {
        let got = collect(b"{\"records\":[{\"a\":1},{\"b\":,},{\"c\":3}]}");
        assert_eq!(recs(&got), vec!["{\"a\":1}", "{\"b\":,}", "{\"c\":3}"]);
    }

    #[test]
    fn truncated_document_is_handed_out_at_finish() {
        let got = collect(b"{\"records\":[{\"a\":1},{\"b\":\"unterminated");
        assert_eq!(recs(&got), vec!["{\"a\":1}", "{\"b\":\"unterminated"]);
    }

    #[test]
    fn empty_and_blank_inputs() {
        assert!(collect(b"").is_empty());
        assert!(collect(b"\xEF\xBB\xBF").is_empty());
        assert!(collect(b"\n\r\n  \n").is_empty());
    }

    #[test]
    fn start_offset_reads_lines() {
        let mut f = Framer::with_start_offset(100);
        let mut out = Vec::new();
        f.feed(b"{\"records\":[1]}\n{\"a\":1}\n", |r| out.push(r.offset));
        assert_eq!(out, vec![100, 116]);
    }

    fn recs_of(v: &[(u64, Vec<u8>, Option<u64>)]) -> Vec<String> {
        v.iter()
            .map(|(o, b, over)| match over {
                Some(n) => format!("<{n} bytes at {o}>"),
                None => String::from_utf8_lossy(b).into_owned(),
            })
            .collect()
    }

    fn framed(data: &[u8], max: usize, chunk: usize) -> Vec<(u64, Vec<u8>, Option<u64>)> {
        let mut out = Vec::new();
        let mut f = Framer::new().with_max_record_len(max);
        for c in data.chunks(chunk.max(1)) {
            f.feed(c, |r| out.push((r.offset, r.bytes.to_vec(), r.oversize)));
        }
        f.finish(|r| out.push((r.offset, r.bytes.to_vec(), r.oversize)));
        out
    }

    #[test]
    fn data_after_an_empty_array_is_framed() {
        for prefix in [
            &b"[]\n"[..],
            b"{\"records\":[]}\n",
            b"{ \"records\" : [ ] }\r\n",
            b"[]",
        ] {
            let mut data = prefix.to_vec();
            data.extend_from_slice(b"{\"a\":1}\n{\"b\":2}\n");
            for chunk in [1, 2, 3, 5, 64] {
                let got = framed(&data, 1 << 20, chunk);
                assert_eq!(
                    recs_of(&got),
                    vec!["{\"a\":1}", "{\"b\":2}"],
                    "{:?} in chunks of {chunk}",
                    String::from_utf8_lossy(prefix)
                );
                assert_eq!(got[0].0 as usize, prefix.len());
            }
        }
    }

    #[test]
    fn documents_one_after_another_are_all_framed() {
        let data = b"{\"records\":[{\"a\":1}]}\n{\"records\":[{\"b\":2}]}\n[{\"c\":3}] {\"d\":4}\n";
        for chunk in [1, 4, 100] {
            assert_eq!(
                recs_of(&framed(data, 1 << 20, chunk)),
                vec!["{\"a\":1}", "{\"b\":2}", "{\"c\":3}", "{\"d\":4}"]
            );
        }
        // What follows a wrapped array other than its `}` is handed out, for the parser to reject.
        let got = framed(
            b"{\"records\":[{\"a\":1}], \"x\":2}\n{\"b\":2}\n",
            1 << 20,
            7,
        );
        assert_eq!(recs_of(&got), vec!["{\"a\":1}", ", \"x\":2}", "{\"b\":2}"]);
    }

    #[test]
    fn activity_log_api_pages_are_framed_without_their_next_link() {
        let data = b"{\"value\":[{\"a\":1},{\"b\":\"}]\"}],\"nextLink\":\"https://m/x?$skipToken=1}\"}\n{ \"value\" : [ {\"c\":3} ], \"nextLink\": null }\n{\"value\":[]}\n{\"d\":4}\n";
        for chunk in [1, 3, 7, 1000] {
            assert_eq!(
                recs_of(&framed(data, 1 << 20, chunk)),
                vec!["{\"a\":1}", "{\"b\":\"}]\"}", "{\"c\":3}", "{\"d\":4}"],
                "chunk {chunk}"
            );
        }
    }

    fn strays_of(v: &[(u64, Vec<u8>, Option<u64>)]) -> usize {
        v.iter()
            .filter(|(_, b, o)| o.is_some() && b.is_empty())
            .count()
    }

    fn framed_full(
        data: &[u8],
        max: usize,
        chunk: usize,
    ) -> Vec<(u64, Vec<u8>, Option<u64>, bool)> {
        let mut out = Vec::new();
        let mut f = Framer::new().with_max_record_len(max);
        for c in data.chunks(chunk.max(1)) {
            f.feed(c, |r| {
                out.push((r.offset, r.bytes.to_vec(), r.oversize, r.stray))
            });
        }
        f.finish(|r| out.push((r.offset, r.bytes.to_vec(), r.oversize, r.stray)));
        out
    }

    #[test]
    fn a_record_whose_first_key_is_value_is_kept_whole() {
        // Hostile round 2, item 1: a record is told from a page by all its members.
        for first in [
            "{\"value\":[],\"time\":\"2024-01-01T00:00:00Z\",\"operationName\":\"X/first\"}",
            "{\"value\":[{\"inner\":1}],\"time\":\"2024-01-01T00:00:00Z\",\"operationName\":\"X/first\"}",
            "{\"nextLink\":\"n\",\"operationName\":\"X/first\"}",
            "{ \"value\" : [1,2] , \"x\": 1}",
        ] {
            let data = format!("{first}\n{{\"time\":\"t\",\"operationName\":\"X/second\"}}\n");
            for chunk in [1, 2, 5, 17, 4096] {
                let got = framed(data.as_bytes(), 1 << 20, chunk);
                assert_eq!(
                    recs_of(&got),
                    vec![first.to_string(), "{\"time\":\"t\",\"operationName\":\"X/second\"}".into()],
                    "{first} in chunks of {chunk}"
                );
            }
        }
    }

    #[test]
    fn every_member_of_a_page_is_framed_or_reported() {
        // Hostile round 2, item 2. Two value arrays: both framed.
        let two = b"{\"value\":[{\"e\":0}],\"value\":[{\"e\":1},{\"e\":2}]}\n{\"e\":3}\n";
        // nextLink first, as `jq -S` writes it, pretty-printed.
        let sorted = b"{\n  \"nextLink\": \"https://m/x?$skiptoken=a\\\"}\",\n  \"value\": [\n    {\"e\": 0},\n    {\"e\": 1}\n  ]\n}\n{\"e\":3}\n";
        for chunk in [1, 3, 8, 4096] {
            assert_eq!(
                recs_of(&framed(two, 1 << 20, chunk)),
                vec!["{\"e\":0}", "{\"e\":1}", "{\"e\":2}", "{\"e\":3}"],
                "two arrays, chunk {chunk}"
            );
            assert_eq!(
                recs_of(&framed(sorted, 1 << 20, chunk)),
                vec!["{\"e\": 0}", "{\"e\": 1}", "{\"e\":3}"],
                "nextLink first, chunk {chunk}"
            );
        }
        // A page too long to be a record is read member by member: the stray member after
        // its value array is handed out as a stray (by offset and length), not dropped.
        let mut big = b"{\"value\":[".to_vec();
        for i in 0..50 {
            if i > 0 {
                big.push(b',');
            }
            big.extend_from_slice(
                format!("{{\"e\":{i},\"pad\":\"{}\"}}", "p".repeat(40)).as_bytes(),
            );
        }
        let more_at = big.len() + 2; // after `],`
        big.extend_from_slice(b"],\"more\":[{\"e\":99}],\"nextLink\":null}\n{\"e\":100}\n");
        for chunk in [1, 7, 64, 1 << 16] {
            let got = framed_full(&big, 1000, chunk);
            let records: Vec<_> = got.iter().filter(|r| !r.3).collect();
            let strays: Vec<_> = got.iter().filter(|r| r.3).collect();
            assert_eq!(records.len(), 51, "chunk {chunk}");
            assert_eq!(strays.len(), 1, "chunk {chunk}");
            assert_eq!(strays[0].0 as usize, more_at);
            assert_eq!(strays[0].2, Some("\"more\":[{\"e\":99}]".len() as u64));
            assert_eq!(records[50].1, b"{\"e\":100}");
        }
        // A big page with nextLink before value is read too.
        let mut sorted_big = b"{\"nextLink\":\"n\",\"value\":[".to_vec();
        sorted_big.extend_from_slice(&big[10..]);
        let got = framed_full(&sorted_big, 1000, 100);
        assert_eq!(got.iter().filter(|r| !r.3).count(), 51);
        assert_eq!(
            strays_of(
                &got.iter()
                    .map(|r| (r.0, r.1.clone(), r.2))
                    .collect::<Vec<_>>()
            ),
            1
        );
    }

    #[test]
    fn an_oversized_line_is_passed_over_and_reported() {
        let mut data = b"{\"a\":1}\n".to_vec();
        let long_at = data.len() as u64;
        data.push(b'{');
        data.extend(std::iter::repeat_n(b'x', 5000));
        data.extend_from_slice(b"}\r\n{\"b\":2}\n");
        data.extend(std::iter::repeat_n(b' ', 9000)); // blanks are not a record
        data.extend_from_slice(b"\n{\"c\":3}\n");
        data.extend(std::iter::repeat_n(b'z', 3000)); // a long unterminated tail
        for chunk in [1, 7, 100, 4096, 1 << 20] {
            let got = framed(&data, 1000, chunk);
            assert_eq!(
                recs_of(&got),
                vec![
                    "{\"a\":1}".to_string(),
                    format!("<5003 bytes at {long_at}>"),
                    "{\"b\":2}".to_string(),
                    "{\"c\":3}".to_string(),
                    format!("<3000 bytes at {}>", data.len() - 3000),
                ],
                "chunks of {chunk}"
            );
        }
    }

    #[test]
    fn an_oversized_array_element_is_passed_over() {
        let big = format!("{{\"s\":\"{}]}}\"}}", "y".repeat(3000));
        let data = format!("{{\"records\":[{{\"a\":1}}, {big}, {{\"b\":[2]}}]}}\n{{\"c\":3}}\n");
        for chunk in [1, 13, 512, 1 << 16] {
            let got = framed(data.as_bytes(), 1000, chunk);
            assert_eq!(
                recs_of(&got),
                vec![
                    "{\"a\":1}".to_string(),
                    format!("<{} bytes at 21>", big.len()),
                    "{\"b\":[2]}".to_string(),
                    "{\"c\":3}".to_string(),
                ],
                "chunks of {chunk}"
            );
        }
    }

    #[test]
    fn held_bytes_stay_under_the_maximum_whatever_the_input() {
        let max = 4096;
        let chunk = 1000;
        let inputs: Vec<Vec<u8>> = vec![
            vec![b'a'; 200_000],
            vec![b'\n'; 200_000],
            vec![b' '; 200_000],
            vec![0u8; 200_000],
            [b"[".to_vec(), vec![b'['; 200_000]].concat(),
            [b"{\"records\":[\"".to_vec(), vec![b'q'; 200_000]].concat(),
            [b"{\n".to_vec(), vec![b'{'; 200_000]].concat(),
        ];
        for data in inputs {
            let mut f = Framer::new().with_max_record_len(max);
            let mut most = 0;
            for c in data.chunks(chunk) {
                f.feed(c, |_| {});
                most = most.max(f.pending());
            }
            assert!(most <= max + chunk, "held {most} bytes");
        }
    }

    #[test]
    fn complete_lines() {
        assert_eq!(complete_lines_len(b"ab\ncd"), 3);
        assert_eq!(complete_lines_len(b"abcd"), 0);
        assert_eq!(complete_lines_len(b"a\n"), 2);
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn frame_chunked(data: &[u8], cuts: &[usize]) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        let mut f = Framer::new();
        let mut pos = 0;
        for &c in cuts {
            let end = (pos + c).min(data.len());
            f.feed(&data[pos..end], |r| out.push((r.offset, r.bytes.to_vec())));
            pos = end;
        }
        f.feed(&data[pos..], |r| out.push((r.offset, r.bytes.to_vec())));
        f.finish(|r| out.push((r.offset, r.bytes.to_vec())));
        out
    }

    fn whole(data: &[u8]) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        frame_all(data, |r| out.push((r.offset, r.bytes.to_vec())));
        out
    }

    /// Inputs shaped like PT1H.json in its forms, with the awkward parts mixed in.
    fn pt1h() -> impl Strategy<Value = Vec<u8>> {
        let record = prop_oneof![
            Just(r#"{"a":"x]}\"{["}"#.to_string()),
            Just("{\"m\":\"a\u{2028}b\u{85}c\"}".to_string()),
            Just(r#"{"n":[1,{"b":[]}],"s":"\\"}"#.to_string()),
            "[a-z{}\\[\\]\",:\\\\ ]{0,24}"
                .prop_map(|s| format!("{{\"r\":\"{}\"}}", s.replace(['"', '\\'], ""))),
            "[ -~]{0,30}",
        ];
        let sep = prop_oneof![
            Just("\n"),
            Just("\r\n"),
            Just("\n\n"),
            Just(" \n"),
            Just(",\n")
        ];
        (
            any::<bool>(),
            0u8..5,
            proptest::collection::vec((record, sep), 0..12),
            any::<bool>(),
        )
            .prop_map(|(bom, form, recs, tail)| {
                let mut s = Vec::new();
                if bom {
                    s.extend_from_slice(b"\xEF\xBB\xBF");
                }
                match form {
                    0 => {
                        for (r, sep) in &recs {
                            s.extend_from_slice(r.as_bytes());
                            s.extend_from_slice(sep.as_bytes());
                        }
                    }
                    1 => {
                        s.extend_from_slice(b"{ \"records\": [\n");
                        for (i, (r, _)) in recs.iter().enumerate() {
                            if i > 0 {
                                s.extend_from_slice(b",\r\n");
                            }
                            s.extend_from_slice(r.as_bytes());
                        }
                        s.extend_from_slice(b"]}\n");
                    }
                    3 | 4 => {
                        // A REST API page (nextLink first or last), or a record that only
                        // starts like one.
                        s.extend_from_slice(if form == 3 {
                            b"{\"nextLink\":\"n}\", \"value\": [\n".as_slice()
                        } else {
                            b"{ \"value\": [".as_slice()
                        });
                        for (i, (r, _)) in recs.iter().enumerate() {
                            if i > 0 {
                                s.extend_from_slice(b",\r\n");
                            }
                            s.extend_from_slice(r.as_bytes());
                        }
                        s.extend_from_slice(if form == 3 {
                            b"]}\n".as_slice()
                        } else {
                            b"], \"more\": [1]}\n".as_slice()
                        });
                    }
                    _ => {
                        for (r, _) in &recs {
                            s.extend_from_slice(b"{\n  \"w\": ");
                            s.extend_from_slice(r.as_bytes());
                            s.extend_from_slice(b"\n}\n");
                        }
                    }
                }
                if tail {
                    s.extend_from_slice(b"{\"partial\":");
                }
                s
            })
    }

    /// Frames `data` cut at `cuts`, with or without digests: every record as it is handed out.
    fn framed_digests(data: &[u8], cuts: &[usize], digests: bool) -> Vec<Record<'static>> {
        let mut out = Vec::new();
        let mut f = Framer::new().with_max_record_len(200);
        if digests {
            f = f.with_digests();
        }
        // Records kept beyond the call: their bytes copied out (leaked, in a test only).
        let mut keep = |r: Record<'_>| {
            out.push(Record {
                bytes: Box::leak(r.bytes.to_vec().into_boxed_slice()),
                ..r
            })
        };
        let mut pos = 0;
        for &c in cuts {
            let end = (pos + c).min(data.len());
            f.feed(&data[pos..end], &mut keep);
            pos = end;
        }
        f.feed(&data[pos..], &mut keep);
        f.finish(&mut keep);
        out
    }

    /// Many JSON Lines of many lengths (more than the lanes and the batch hold), a few too long.
    fn many_lines() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec((0usize..260, any::<u8>()), 0..150).prop_map(|recs| {
            let mut s = Vec::new();
            for (len, fill) in recs {
                s.push(b'{');
                s.extend(std::iter::repeat_n(b'a' + fill % 26, len));
                s.extend_from_slice(b"}\n");
            }
            s
        })
    }

    proptest! {
        /// Asking for digests changes nothing but the digest: the same records, in the same
        /// order, whatever the chunking; each with bytes has its SHA-256 where the CPU hashes in
        /// lanes, and none has one elsewhere (nor any oversized record or stray member).
        #[test]
        fn digests_change_nothing_but_the_digest(
            data in prop_oneof![pt1h(), many_lines()],
            cuts in proptest::collection::vec(0usize..3000, 0..6),
        ) {
            use sha2::{Digest, Sha256};
            let plain = framed_digests(&data, &[], false);
            let hashed = framed_digests(&data, &cuts, true);
            prop_assert_eq!(plain.len(), hashed.len());
            for (p, h) in plain.iter().zip(&hashed) {
                prop_assert_eq!(p.sha256, None);
                prop_assert_eq!(Record { sha256: None, ..*h }, *p);
                let want: Option<[u8; 32]> = (crate::sha256_lanes::available()
                    && h.oversize.is_none())
                .then(|| Sha256::digest(h.bytes).into());
                prop_assert_eq!(h.sha256, want, "at {}", h.offset);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn chunked_framing_equals_whole_buffer_framing(
            data in pt1h(),
            cuts in proptest::collection::vec(0usize..40, 0..40),
        ) {
            prop_assert_eq!(frame_chunked(&data, &cuts), whole(&data));
        }

        #[test]
        fn arbitrary_bytes_chunked_equal_whole(
            data in proptest::collection::vec(any::<u8>(), 0..300),
            cuts in proptest::collection::vec(0usize..20, 0..30),
        ) {
            prop_assert_eq!(frame_chunked(&data, &cuts), whole(&data));
        }

        #[test]
        fn with_a_small_maximum_chunked_framing_equals_whole_buffer_framing(
            data in prop_oneof![pt1h(), proptest::collection::vec(any::<u8>(), 0..300)],
            max in 1usize..40,
            cuts in proptest::collection::vec(0usize..40, 0..40),
        ) {
            let run = |cuts: &[usize]| {
                let mut out = Vec::new();
                let mut f = Framer::new().with_max_record_len(max);
                let mut pos = 0;
                for &c in cuts {
                    let end = (pos + c).min(data.len());
                    f.feed(&data[pos..end], |r| out.push((r.offset, r.bytes.to_vec(), r.oversize, r.stray)));
                    pos = end;
                }
                f.feed(&data[pos..], |r| out.push((r.offset, r.bytes.to_vec(), r.oversize, r.stray)));
                f.finish(|r| out.push((r.offset, r.bytes.to_vec(), r.oversize, r.stray)));
                out
            };
            let whole = run(&[]);
            prop_assert_eq!(run(&cuts), whole.clone());
            for (offset, bytes, over, stray) in whole {
                match over {
                    // A stray page member is handed out by its length, whatever it is.
                    Some(n) => prop_assert!((stray || n as usize > max) && bytes.is_empty()),
                    None => {
                        prop_assert!(bytes.len() <= max);
                        let at = offset as usize;
                        prop_assert_eq!(&data[at..at + bytes.len()], &bytes[..]);
                    }
                }
            }
        }

        #[test]
        fn records_are_slices_of_the_input_at_their_offsets(data in pt1h()) {
            for (offset, bytes) in whole(&data) {
                let at = offset as usize;
                prop_assert_eq!(&data[at..at + bytes.len()], &bytes[..]);
            }
        }

        #[test]
        fn framing_and_mapping_never_panic(
            data in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..400),
                pt1h(),
            ],
        ) {
            let mut m = crate::Mapper::new("123456789012");
            frame_all(&data, |r| {
                if let Ok(ev) = m.map(r) {
                    let mut e = Vec::new();
                    ev.write_entry(&mut e);
                }
            });
        }
    }
}
