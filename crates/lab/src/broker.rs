//! The broker under test: a fresh Cohort (this binary's `serve`), Apache Kafka
//! (scripts/kafka-reference), or whatever `--bootstrap` points at.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Broker {
    pub kind: String,
    /// What ran: "Cohort 0.1.0", "Apache Kafka 4.4.0", or "unknown".
    pub version: String,
    pub bootstrap: String,
    child: Option<Child>,
    dir: Option<tempfile::TempDir>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(addr: &str, timeout: Duration) -> Result<(), String> {
    let until = Instant::now() + timeout;
    while Instant::now() < until {
        if TcpStream::connect(addr).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("nothing listening on {addr} after {timeout:?}"))
}

impl Broker {
    pub fn external(bootstrap: &str) -> Broker {
        Broker {
            kind: "external".into(),
            version: "unknown".into(),
            bootstrap: bootstrap.into(),
            child: None,
            dir: None,
        }
    }

    /// A fresh Cohort on loopback, with `args` added to `cohort serve`.
    pub fn cohort(args: &[String]) -> Result<Broker, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let bootstrap = format!("127.0.0.1:{}", free_port());
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let log =
            std::fs::File::create(dir.path().join("cohort.log")).map_err(|e| e.to_string())?;
        let child = Command::new(exe)
            .args(["serve", "--listen", &bootstrap, "--data-dir"])
            .arg(dir.path().join("data"))
            .args(args)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .map_err(|e| e.to_string())?;
        let b = Broker {
            kind: "cohort".into(),
            version: format!("Cohort {}", env!("CARGO_PKG_VERSION")),
            bootstrap,
            child: Some(child),
            dir: Some(dir),
        };
        wait_port(&b.bootstrap, Duration::from_secs(30))?;
        Ok(b)
    }

    /// Apache Kafka from Maven Central, single KRaft node, default settings.
    pub fn kafka(script: &PathBuf) -> Result<Broker, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("kafka.log")).map_err(|e| e.to_string())?;
        let child = Command::new(script)
            .arg(port.to_string())
            .arg(dir.path().join("data"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("{}: {e}", script.display()))?;
        let b = Broker {
            kind: "kafka".into(),
            version: kafka_version(script),
            bootstrap: format!("127.0.0.1:{port}"),
            child: Some(child),
            dir: Some(dir),
        };
        wait_port(&b.bootstrap, Duration::from_secs(180))?;
        Ok(b)
    }
}

impl Broker {
    /// Stops the broker; for Cohort, how many group-membership requests
    /// (heartbeats, joins, syncs) it served, from the line it logs at shutdown.
    pub fn stop(mut self) -> Option<u64> {
        self.shutdown();
        let log = std::fs::read_to_string(self.dir.as_ref()?.path().join("cohort.log")).ok()?;
        let line = log
            .lines()
            .rev()
            .find(|l| l.contains("group membership requests served"))?;
        let plain: String = strip_ansi(line);
        let at = plain.find("membership_requests=")? + "membership_requests=".len();
        plain[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    }

    fn shutdown(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGTERM for a clean stop (the Kafka script execs the JVM).
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let until = Instant::now() + Duration::from_secs(20);
            while Instant::now() < until {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The Kafka version the reference script runs (from lab/kafka/pom.xml beside it).
fn kafka_version(script: &std::path::Path) -> String {
    let pom = script
        .parent()
        .and_then(|d| d.parent())
        .map(|root| root.join("lab/kafka/pom.xml"));
    let text = pom
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    let v = text
        .split("<kafka.version>")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap_or("?");
    format!("Apache Kafka {v}")
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut esc = false;
    for c in s.chars() {
        match (esc, c) {
            (false, '\x1b') => esc = true,
            (true, 'm') => esc = false,
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    out
}
