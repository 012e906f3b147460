//! Fixed-work load on the local lake: sends the same pre-built PutAuditEvents bodies (100 events
//! each) a number of rounds over keep-alive connections, then prints events per second of wall
//! time and of process CPU time (client included). CPU time is the steadier figure on a shared
//! machine: events per CPU-second is what one core sustains.
//!
//! `cargo run --release --example lake_load -- [ROUNDS] [CONNECTIONS] [memory|file|fsync]`

use std::time::Instant;

use aztrail_lake::{Db, FaultConfig, Lake, LakeConfig, Sync};
use aztrail_transform::{frame_all, synth, Batcher, Mapper};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKID/20261127/us-east-1/cloudtrail-data/aws4_request, SignedHeaders=host;x-amz-date, Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn bodies() -> Vec<Vec<u8>> {
    let data = synth::generate(2000, 21);
    let mut mapper = Mapper::new(aztrail_lake::LOCAL_ACCOUNT);
    let mut batcher = Batcher::new();
    let (mut out, mut entry) = (Vec::new(), Vec::new());
    frame_all(data.as_bytes(), |r| {
        if let Ok(ev) = mapper.map(r) {
            entry.clear();
            ev.write_entry(&mut entry);
            if let Ok(Some(done)) = batcher.push(&entry, ()) {
                out.push(done.body);
            }
        }
    });
    out.extend(batcher.take().map(|b| b.body));
    out
}

/// User + system CPU seconds of this process so far (Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

async fn post(conn: &mut BufReader<TcpStream>, body: &[u8]) -> anyhow::Result<()> {
    let head = format!(
        "POST /PutAuditEvents?channelArn=aztrail-local HTTP/1.1\r\nHost: lake\r\nAuthorization: {AUTH}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.get_mut().write_all(head.as_bytes()).await?;
    conn.get_mut().write_all(body).await?;
    let (mut len, mut line) = (0usize, String::new());
    loop {
        line.clear();
        conn.read_line(&mut line).await?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse()?;
            }
        }
    }
    let mut resp = vec![0; len];
    conn.read_exact(&mut resp).await?;
    anyhow::ensure!(
        resp.starts_with(b"{\"failed\":[]"),
        "{}",
        String::from_utf8_lossy(&resp)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10);
    let conns: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1);
    let mode = args.get(3).map(String::as_str).unwrap_or("file");
    let dir = std::env::temp_dir().join(format!("aztrail-lake-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (db, sync) = match mode {
        "memory" => (Db::Memory, Sync::Process),
        "fsync" => (Db::File(dir.join("lake.db")), Sync::Full),
        _ => (Db::File(dir.join("lake.db")), Sync::Process),
    };
    let lake = Lake::start(LakeConfig {
        db,
        sync,
        faults: FaultConfig::none(),
        ..LakeConfig::in_memory()
    })
    .await?;
    let bodies = std::sync::Arc::new(bodies());
    let events_per_round = 2000;
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let mut tasks = Vec::new();
    for k in 0..conns {
        let bodies = bodies.clone();
        let addr = lake.addr();
        tasks.push(tokio::spawn(async move {
            let mut conn = BufReader::new(TcpStream::connect(addr).await?);
            for r in 0..rounds {
                if r % conns != k {
                    continue;
                }
                for b in bodies.iter() {
                    post(&mut conn, b).await?;
                }
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
    let events = (rounds * events_per_round) as f64;
    assert_eq!(lake.count().await?, events as u64);
    println!(
        "{mode}, {conns} connection(s): {events} events in {wall:.2} s wall ({:.0} events/s), {cpu:.2} s CPU ({:.0} events per CPU-second)",
        events / wall,
        events / cpu.max(1e-9)
    );
    lake.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
