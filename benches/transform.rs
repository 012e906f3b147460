//! Throughput of the transform hot path (framing + mapping + serializing), on generated records
//! and on the shared corpus, beside the practical ceiling (simd-json parsing alone of the same
//! records) and the alternatives we chose against (serde_json as the parser).
//!
//! Run: `cargo bench --bench transform`. Groups report MB/s (`bytes`) and events/s (`events`).
//! Beside the CloudTrail path, the Security Lake path: records → OCSF events (`ocsf`), and on to
//! sorted zstd Parquet files through the spool (`ocsf+parquet`).
//!
//! `hostile/*` frames inputs built to hurt a framer (one endless line, nothing but line feeds,
//! zeros, blanks) at two sizes, in 1 MiB chunks as `aztrail transform` reads: the same MB/s at
//! both sizes is linear time, and the bytes the framer holds (printed once) stay under the maximum
//! record length plus a chunk whatever the size.

use aztrail_transform::{frame_all, synth, Framer, Mapper, Parser};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

// The allocator `aztrail` itself uses (src/main.rs), so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Generated records: 8,000 (about 19 MB).
fn generated() -> Vec<u8> {
    synth::generate(8_000, 42).into_bytes()
}

/// Every record of ../shared/corpus, re-framed as JSON Lines.
fn corpus() -> Option<Vec<u8>> {
    let files = aztrail_testkit::corpus_files().ok()?;
    let mut out = Vec::new();
    for f in files {
        let bytes = std::fs::read(&f).ok()?;
        // Pretty and wrapped files are framed into single records; JSON Lines stay as they are.
        frame_all(&bytes, |r| {
            let v: serde_json::Value = match serde_json::from_slice(r.bytes) {
                Ok(v) => v,
                Err(_) => return,
            };
            out.extend_from_slice(serde_json::to_string(&v).unwrap_or_default().as_bytes());
            out.push(b'\n');
        });
    }
    Some(out)
}

fn count_records(data: &[u8]) -> u64 {
    let mut n = 0;
    frame_all(data, |_| n += 1);
    n
}

/// Frames `data` as `aztrail transform` and the loaders do: each record's SHA-256 computed by the
/// framer, many records at once, where the CPU can (`Framer::with_digests`).
fn frame_hashed<F: FnMut(aztrail_transform::Record<'_>)>(data: &[u8], emit: F) {
    Framer::new().with_digests().frame_whole(data, emit);
}

/// Frame, map and serialize every record into one PutAuditEvents entry; returns bytes written.
fn transform(data: &[u8], parser: Parser) -> usize {
    let mut mapper = Mapper::new("123456789012").with_parser(parser);
    let mut out = Vec::with_capacity(1 << 20);
    let mut written = 0;
    frame_hashed(data, |r| {
        if let Ok(ev) = mapper.map(r) {
            out.clear();
            ev.write_entry(&mut out);
            written += out.len();
        }
    });
    written
}

/// Frame and map every record to an OCSF event, serialized as the spool writes it.
fn ocsf(data: &[u8]) -> usize {
    let mapper = aztrail_ocsf::OcsfMapper::new(Default::default());
    let mut out = Vec::with_capacity(1 << 16);
    let mut written = 0;
    frame_hashed(data, |r| {
        if let Ok(ev) = mapper.map(r) {
            out.clear();
            let _ = serde_json::to_writer(&mut out, &ev.json);
            written += out.len();
        }
    });
    written
}

/// Frame, map to OCSF, spool and write the Parquet files (one per class and day), as a
/// Security Lake batch does; returns the bytes of Parquet written.
fn ocsf_parquet(data: &[u8]) -> u64 {
    let mapper = aztrail_ocsf::OcsfMapper::new(Default::default());
    let dir = std::env::temp_dir();
    let Ok(mut spool) = aztrail_securitylake::Spool::new(&dir) else {
        return 0;
    };
    frame_hashed(data, |r| {
        if let Ok(ev) = mapper.map(r) {
            let _ = spool.push(&ev);
        }
    });
    let Ok(out) = tempfile::tempdir_in(&dir) else {
        return 0;
    };
    spool
        .finish("bench", out.path(), &Default::default())
        .map(|w| w.iter().map(|f| f.bytes).sum())
        .unwrap_or(0)
}

/// The ceiling: frame and parse every record with simd-json (into a reused tape), nothing else.
fn parse_only(data: &[u8]) -> usize {
    let mut scratch = Vec::new();
    let mut buffers = simd_json::Buffers::with_max_depth(4096, usize::MAX);
    let mut tape = simd_json::Tape::null();
    let mut nodes = 0;
    frame_all(data, |r| {
        scratch.clear();
        scratch.extend_from_slice(r.bytes);
        let mut t = std::mem::replace(&mut tape, simd_json::Tape::null()).reset();
        if simd_json::fill_tape(&mut scratch, &mut buffers, &mut t).is_ok() {
            nodes += t.0.len();
        }
        tape = t.reset();
    });
    nodes
}

/// serde_json parsing alone, for comparison with the ceiling.
fn serde_parse_only(data: &[u8]) -> usize {
    let mut n = 0;
    frame_all(data, |r| {
        if let Ok(serde_json::Value::Object(o)) = serde_json::from_slice(r.bytes) {
            n += o.len();
        }
    });
    n
}

fn bench(c: &mut Criterion) {
    let mut inputs = vec![("generated", generated())];
    if let Some(corpus) = corpus() {
        inputs.push(("corpus", corpus));
    }
    for (name, data) in &inputs {
        let records = count_records(data);
        let mut group = c.benchmark_group(format!("bytes/{name}"));
        group.sample_size(10);
        group.throughput(Throughput::Bytes(data.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("frame+map+serialize", "simd-json"),
            data,
            |b, d| b.iter(|| transform(d, Parser::SimdJson)),
        );
        group.bench_with_input(
            BenchmarkId::new("frame+map+serialize", "serde_json"),
            data,
            |b, d| b.iter(|| transform(d, Parser::SerdeJson)),
        );
        group.bench_with_input(
            BenchmarkId::new("frame+parse (ceiling)", "simd-json"),
            data,
            |b, d| b.iter(|| parse_only(d)),
        );
        group.bench_with_input(
            BenchmarkId::new("frame+parse", "serde_json"),
            data,
            |b, d| b.iter(|| serde_parse_only(d)),
        );
        group.bench_with_input(BenchmarkId::new("frame+map", "ocsf"), data, |b, d| {
            b.iter(|| ocsf(d))
        });
        group.bench_with_input(
            BenchmarkId::new("frame+map+parquet", "ocsf"),
            data,
            |b, d| b.iter(|| ocsf_parquet(d)),
        );
        group.finish();

        let mut group = c.benchmark_group(format!("events/{name}"));
        group.sample_size(10);
        group.throughput(Throughput::Elements(records));
        group.bench_with_input(
            BenchmarkId::new("frame+map+serialize", "simd-json"),
            data,
            |b, d| b.iter(|| transform(d, Parser::SimdJson)),
        );
        group.bench_with_input(
            BenchmarkId::new("frame+map+parquet", "ocsf"),
            data,
            |b, d| b.iter(|| ocsf_parquet(d)),
        );
        group.finish();
    }
}

/// Frames `data` in 1 MiB chunks; returns the records handed out and the most bytes held.
fn frame_chunked(data: &[u8]) -> (u64, usize) {
    let mut framer = Framer::new();
    let mut records = 0u64;
    let mut held = 0;
    for chunk in data.chunks(1 << 20) {
        framer.feed(chunk, |_| records += 1);
        held = held.max(framer.pending());
    }
    framer.finish(|_| records += 1);
    (records, held)
}

fn hostile(c: &mut Criterion) {
    type Make = fn(usize) -> Vec<u8>;
    let shapes: [(&str, Make); 4] = [
        ("one line", |n| vec![b'a'; n]),
        ("line feeds", |n| vec![b'\n'; n]),
        ("zeros", |n| vec![0u8; n]),
        ("blanks", |n| vec![b' '; n]),
    ];
    for (name, make) in shapes {
        let mut group = c.benchmark_group(format!("hostile/{name}"));
        group.sample_size(10);
        for mib in [16usize, 64] {
            let data = make(mib << 20);
            let (records, held) = frame_chunked(&data);
            eprintln!("hostile/{name} {mib} MiB: {records} record(s) handed out, at most {held} bytes held");
            group.throughput(Throughput::Bytes(data.len() as u64));
            group.bench_with_input(
                BenchmarkId::new("frame", format!("{mib} MiB")),
                &data,
                |b, d| b.iter(|| frame_chunked(d)),
            );
        }
        group.finish();
    }
}

criterion_group!(benches, bench, hostile);
criterion_main!(benches);
