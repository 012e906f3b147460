//! Test-only: the emulators aztrail's end-to-end tests run against, started for real on free
//! ports and stopped by PID when dropped.
//!
//! - [`Moto`]: moto's server (S3, SQS, S3→SQS notifications), from `target/venv-test`, which
//!   `scripts/test` fills, or `$MOTO_SERVER`.
//! - [`Azurite`]: Azurite's blob service, from `target/node-test`, which `scripts/test` fills, or
//!   `$AZURITE_BLOB`, with its data in a fresh temporary directory.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The workspace's `target` directory.
fn target_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target")
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn wait_for(port: u16, what: &str, child: &mut Child) {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited at start: {status}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what} did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn program(env: &str, default: PathBuf, how: &str) -> PathBuf {
    let bin = std::env::var_os(env).map_or(default, PathBuf::from);
    assert!(
        bin.exists(),
        "{} not found: run ./scripts/test once ({how}) or set {env}",
        bin.display()
    );
    bin
}

/// A moto server, killed when dropped.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Moto {
    /// Starts moto on a free port and waits until it listens.
    pub fn start() -> Self {
        let bin = program(
            "MOTO_SERVER",
            target_dir().join("venv-test/bin/moto_server"),
            "it installs moto[server] into target/venv-test",
        );
        let port = free_port();
        let mut child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting moto");
        wait_for(port, "moto", &mut child);
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Azurite's blob service with a fresh data directory, killed (and the directory removed) when
/// dropped.
pub struct Azurite {
    child: Child,
    dir: PathBuf,
    /// `http://127.0.0.1:PORT/devstoreaccount1`.
    pub account_url: String,
}

/// Azurite's account name.
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";

impl Azurite {
    /// Starts Azurite on a free port and waits until it listens.
    pub fn start() -> Self {
        let bin = program(
            "AZURITE_BLOB",
            target_dir().join("node-test/node_modules/.bin/azurite-blob"),
            "it installs azurite into target/node-test",
        );
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("aztrail-azurite-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("azurite dir");
        let mut child = Command::new(&bin)
            .args([
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                &port.to_string(),
                "--skipApiVersionCheck",
                "--disableProductStyleUrl",
                "--silent",
                "--location",
            ])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting azurite");
        wait_for(port, "azurite", &mut child);
        Self {
            child,
            dir,
            account_url: format!("http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"),
        }
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
