//! Fixed-work load on the local lake: sends the same pre-built PutAuditEvents bodies (100 events
//! each) a number of rounds over keep-alive connections, then prints events per second of wall
//! time and of process CPU time (client included). CPU time is the steadier figure on a shared
//! machine: events per CPU-second is what one core sustains.
//!
//! `cargo run --release --example lake_load -- [ROUNDS] [CONNECTIONS] [memory|file|fsync]`

use std::time::Instant;

use aztrail_lake::raw_client::RawClient;
use aztrail_lake::{Db, FaultConfig, Lake, LakeConfig, Sync, LOCAL_ACCOUNT};

/// User + system CPU seconds of this process so far (Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10);
    let conns: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1);
    let mode = args.get(3).map(String::as_str).unwrap_or("file");
    let tmp_dir = tempfile::Builder::new()
        .prefix("aztrail-lake-load-")
        .tempdir()
        .expect("a temporary directory");
    let dir = tmp_dir.path().to_path_buf();
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
    let bodies = std::sync::Arc::new(aztrail_load::sink::request_bodies(2000, 21, LOCAL_ACCOUNT));
    let events_per_round = 2000;
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let mut tasks = Vec::new();
    for k in 0..conns {
        let bodies = bodies.clone();
        let addr = lake.addr();
        tasks.push(tokio::spawn(async move {
            let mut client = RawClient::connect(addr).await?;
            for r in 0..rounds {
                if r % conns != k {
                    continue;
                }
                for b in bodies.iter() {
                    let (status, resp) = client.put("aztrail-local", b).await?;
                    anyhow::ensure!(
                        status == 200 && resp.starts_with(b"{\"failed\":[]"),
                        "{status}: {}",
                        String::from_utf8_lossy(&resp)
                    );
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
