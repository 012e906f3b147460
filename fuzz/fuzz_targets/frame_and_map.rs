//! Fuzzes framing (whole and chunked, which must agree) and mapping on arbitrary bytes: no input
//! may panic, and every event must fit a request on its own.
#![no_main]

use aztrail_transform::limits::MAX_REQUEST_BYTES;
use aztrail_transform::{Framer, Mapper, Source};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks a chunk size, so chunked and whole framing are compared.
    let (chunk, body) = match data.split_first() {
        Some((c, rest)) => (usize::from(*c % 64) + 1, rest),
        None => (1, data),
    };
    let mut whole = Vec::new();
    aztrail_transform::frame_all(body, |r| whole.push((r.offset, r.bytes.to_vec())));
    let mut chunked = Vec::new();
    let mut framer = Framer::new();
    for c in body.chunks(chunk) {
        framer.feed(c, |r| chunked.push((r.offset, r.bytes.to_vec())));
    }
    framer.finish(|r| chunked.push((r.offset, r.bytes.to_vec())));
    assert_eq!(whole, chunked);

    let mut mapper = Mapper::new("123456789012");
    mapper.set_source(&Source { bucket: None, key: "y=2024/m=01/d=02/h=03/PT1H.json".into() });
    let mut entry = Vec::new();
    for (offset, bytes) in &whole {
        let rec = aztrail_transform::Record::new(*offset, bytes);
        if let Ok(ev) = mapper.map(rec) {
            entry.clear();
            ev.write_entry(&mut entry);
            assert_eq!(entry.len(), ev.entry_len());
            // `{"auditEvents":[` and `]}` around it.
            assert!(entry.len() + 18 <= MAX_REQUEST_BYTES, "every event fits a request");
        }
    }
});
