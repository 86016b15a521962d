//! The core stays sans-IO: no async runtime, clock, randomness, files, sockets
//! or wire codec in `types`, `assign` or `coordinator`, neither as dependencies
//! nor in the source.

use std::path::Path;

const FORBIDDEN_DEPS: &[&str] = &[
    "tokio",
    "rand",
    "kafka-protocol",
    "futures",
    "mio",
    "getrandom",
];
const FORBIDDEN_SOURCE: &[&str] = &[
    "std::time",
    "SystemTime",
    "Instant::now",
    "std::fs",
    "std::net",
    "std::thread",
    "tokio",
    "rand::",
    "kafka_protocol",
    "std::env",
];

fn check_crate(dir: &Path) {
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .unwrap_or("")
        .split("\n[")
        .next()
        .unwrap_or("");
    for dep in FORBIDDEN_DEPS {
        assert!(
            !deps
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{dep} "))
                    || l.trim_start().starts_with(&format!("{dep}."))),
            "{} depends on {dep}",
            dir.display()
        );
    }
    let mut stack = vec![dir.join("src")];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                for (n, line) in text.lines().enumerate() {
                    let code = line.split("//").next().unwrap_or("");
                    for bad in FORBIDDEN_SOURCE {
                        assert!(!code.contains(bad), "{}:{}: uses {bad}", p.display(), n + 1);
                    }
                }
            }
        }
    }
}

#[test]
fn the_core_crates_do_no_io_and_read_no_clock() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    for name in ["types", "coordinator", "assign"] {
        let dir = crates.join(name);
        if dir.exists() {
            check_crate(&dir);
        }
    }
}
