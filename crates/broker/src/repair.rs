//! `cohort repair`: what an operator runs on a stopped broker whose logs are
//! damaged. Nothing is deleted: every byte cut is moved into
//! `repair-<time>/` under the data directory.
//!
//! - A lost `meta/topics.json` is rebuilt from each partition directory's
//!   `partition.metadata` (topic configs come back as defaults: they live
//!   only in topics.json).
//! - Each partition's log is verified batch by batch (CRCs, offsets across
//!   segments) and cut at its first damage; a missing partition directory is
//!   recreated empty.
//! - The coordinator log likewise, and also at its first record that does not
//!   decode; a missing `CURRENT` is rewritten when only one log generation
//!   exists.
//! - The recovery points are rewritten to what is now on disk, so the next
//!   start accepts the repaired logs.

use crate::checkpoints;
use crate::topics::{
    id_from_hex, id_to_hex, parse_partition_metadata, partition_dir_name, partition_metadata,
    write_atomically, TopicRecord, TopicsFile, PARTITION_METADATA,
};
use cohort_log::LogStore;
use cohort_log_local::{Checkpoint, LocalLog, LocalLogConfig, Repaired};
use std::collections::BTreeMap;
use std::io;
use std::path::Path;

/// What a repair found and did, one line per fact, for the operator.
#[derive(Debug, Default)]
pub struct Report {
    pub lines: Vec<String>,
    /// Logs cut (or that would be, in a dry run).
    pub cut: usize,
}

pub struct RepairOptions {
    pub dry_run: bool,
    /// Which coordinator log generation is live, when `CURRENT` is lost and
    /// more than one exists.
    pub coordinator_generation: Option<u64>,
}

fn say(report: &mut Report, line: String) {
    report.lines.push(line);
}

pub fn repair(data_dir: &Path, options: &RepairOptions) -> io::Result<Report> {
    let _lock = crate::lock_data_dir(data_dir)?;
    let mut report = Report::default();
    let aside = data_dir.join(format!("repair-{}", crate::now_ms()));
    let dry = options.dry_run;
    let topics = topics_file(data_dir, dry, &mut report)?;
    let mut points = checkpoints::Entries::new();
    for t in &topics.topics {
        let Some(id) = id_from_hex(&t.id) else {
            say(
                &mut report,
                format!("topic {}: bad id {} in topics.json, skipped", t.name, t.id),
            );
            continue;
        };
        for p in 0..t.partitions {
            let name = partition_dir_name(&id, p);
            let dir = data_dir.join(&name);
            if !dir.is_dir() {
                say(
                    &mut report,
                    format!(
                        "{name} (topic {} partition {p}): directory missing, recreated empty",
                        t.name
                    ),
                );
                report.cut += 1;
                if !dry {
                    std::fs::create_dir_all(&dir)?;
                    std::fs::write(
                        dir.join(PARTITION_METADATA),
                        partition_metadata(&t.name, &id, p),
                    )?;
                }
            }
            let what = format!("{name} (topic {} partition {p})", t.name);
            let done = cohort_log_local::repair(&dir, &aside.join(&name), dry)?;
            describe(&mut report, &what, &done);
            points.insert(name, on_disk(&dir, &done, dry)?);
        }
    }
    coordinator(data_dir, &aside, options, &mut points, &mut report)?;
    if dry {
        say(&mut report, "dry run: nothing was changed".into());
    } else {
        checkpoints::write(data_dir, &points)?;
        if report.cut > 0 {
            say(
                &mut report,
                format!("everything cut was moved to {}", aside.display()),
            );
        }
    }
    if report.cut == 0 {
        say(&mut report, "no damage found".into());
    }
    Ok(report)
}

fn describe(report: &mut Report, what: &str, done: &Repaired) {
    if let Some((file, byte, offset, why)) = &done.cut {
        report.cut += 1;
        say(
            report,
            format!(
                "{what}: cut at {} byte {byte} (offset {offset}): {why}; {} bytes in {} files moved aside; offsets now {}..{}",
                file.display(),
                done.bytes_moved,
                done.moved.len(),
                done.start_offset,
                done.end_offset
            ),
        );
    }
}

/// The checkpoint a repaired log gets: exactly what is on disk.
fn on_disk(dir: &Path, done: &Repaired, dry: bool) -> io::Result<Checkpoint> {
    if dry || !dir.is_dir() {
        return Ok(Checkpoint {
            start_offset: done.start_offset,
            recovery_point: done.end_offset,
        });
    }
    let (log, _) = LocalLog::open(dir, LocalLogConfig::default())?;
    Ok(Checkpoint {
        start_offset: log.start_offset(),
        recovery_point: log.end_offset(),
    })
}

/// Reads topics.json, or rebuilds it from the partitions' metadata files.
fn topics_file(data_dir: &Path, dry: bool, report: &mut Report) -> io::Result<TopicsFile> {
    let path = data_dir.join("meta/topics.json");
    match std::fs::read(&path) {
        Ok(b) => {
            return serde_json::from_slice(&b).map_err(|e| {
                io::Error::other(format!(
                    "{}: {e}: fix or remove it (repair rebuilds a missing one)",
                    path.display()
                ))
            })
        }
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        Err(_) => {}
    }
    let mut found: BTreeMap<String, (String, i32)> = BTreeMap::new();
    let mut unknown = Vec::new();
    let partitions = data_dir.join("partitions");
    if partitions.is_dir() {
        for entry in std::fs::read_dir(&partitions)? {
            let entry = entry?;
            let meta = std::fs::read_to_string(entry.path().join(PARTITION_METADATA))
                .ok()
                .and_then(|t| parse_partition_metadata(&t));
            let dir_name = entry.file_name().to_string_lossy().to_string();
            match meta {
                Some((id, name, p))
                    if format!("partitions/{dir_name}") == partition_dir_name(&id, p) =>
                {
                    let e = found.entry(id_to_hex(&id)).or_insert((name, 0));
                    e.1 = e.1.max(p + 1);
                }
                _ => unknown.push(dir_name),
            }
        }
    }
    let mut file = TopicsFile::default();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for (id, (name, count)) in found {
        if let Some(other) = names.get(&name) {
            say(report, format!("topic {name}: ids {other} and {id} both claim it; {id} left out (its directories will be set aside)"));
            continue;
        }
        names.insert(name.clone(), id.clone());
        say(report, format!("{} is missing: topic {name} (id {id}, {count} partitions) rebuilt from its partitions' metadata, with default configs", path.display()));
        file.topics.push(TopicRecord {
            name,
            id,
            partitions: count,
            configs: BTreeMap::new(),
        });
    }
    for d in unknown {
        say(report, format!("partitions/{d}: no readable {PARTITION_METADATA}; not added to any topic (the broker sets it aside in stray/)"));
    }
    if !file.topics.is_empty() {
        report.cut += 1;
        if !dry {
            let json = serde_json::to_vec_pretty(&file).map_err(io::Error::other)?;
            write_atomically(&path, &json)?;
        }
    }
    Ok(file)
}

fn coordinator(
    data_dir: &Path,
    aside: &Path,
    options: &RepairOptions,
    points: &mut checkpoints::Entries,
    report: &mut Report,
) -> io::Result<()> {
    let name = "coordinator/shard-0";
    let root = data_dir.join(name);
    if !root.is_dir() {
        return Ok(());
    }
    let mut generations: Vec<u64> = std::fs::read_dir(&root)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_prefix("log-")?
                .parse()
                .ok()
        })
        .collect();
    generations.sort_unstable();
    let current = root.join("CURRENT");
    let named = std::fs::read_to_string(&current)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    let generation = match (named, options.coordinator_generation) {
        (_, Some(g)) => g,
        (Some(g), None) if generations.contains(&g) => g,
        (None, None) if generations.len() <= 1 => generations.first().copied().unwrap_or(0),
        (Some(g), None) if generations.len() == 1 => {
            say(
                report,
                format!(
                    "{} names generation {g}, which is missing",
                    current.display()
                ),
            );
            generations[0]
        }
        _ => {
            return Err(io::Error::other(format!(
                "{} is missing or names a missing log, and coordinator logs {generations:?} exist: \
                 say which is live with --coordinator-generation",
                current.display()
            )))
        }
    };
    if named != Some(generation) {
        report.cut += 1;
        say(
            report,
            format!("{} now names generation {generation}", current.display()),
        );
        if !options.dry_run {
            write_atomically(&current, generation.to_string().as_bytes())?;
        }
    }
    let log_name = format!("{name}/log-{generation:06}");
    let dir = data_dir.join(&log_name);
    let done = cohort_log_local::repair(&dir, &aside.join(&log_name), options.dry_run)?;
    describe(report, &log_name, &done);
    if let Some(offset) = first_undecodable(&dir, options.dry_run)? {
        report.cut += 1;
        say(report, format!("{log_name}: cut at offset {offset}, the first record that does not decode; the rest moved aside"));
        if !options.dry_run {
            let (mut log, _) = LocalLog::open(&dir, LocalLogConfig::default())?;
            let rest = log.read(offset, log.end_offset(), usize::MAX)?;
            std::fs::create_dir_all(aside.join(&log_name))?;
            std::fs::write(
                aside
                    .join(&log_name)
                    .join(format!("from-offset-{offset}.batches")),
                &rest,
            )?;
            log.truncate_to(offset)?;
            (log.syncer()?)()?;
        }
    }
    points.insert(log_name, on_disk(&dir, &done, options.dry_run)?);
    Ok(())
}

/// The base offset of the first batch holding a record that does not decode.
fn first_undecodable(dir: &Path, dry: bool) -> io::Result<Option<u64>> {
    if !dir.is_dir() || dry {
        return Ok(None);
    }
    let (log, _) = LocalLog::open(dir, LocalLogConfig::default())?;
    let bytes = log.read(log.start_offset(), log.end_offset(), usize::MAX)?;
    let mut at = 0;
    while at < bytes.len() {
        let h = cohort_log::BatchHeader::parse(&bytes[at..])
            .map_err(|e| io::Error::other(e.to_string()))?;
        let mut ok = true;
        let read = cohort_records::for_each_record(&bytes[at..at + h.size], true, &mut |_, r| {
            ok = cohort_coordinator::Record::decode(
                r.key.as_deref(),
                r.value.as_deref().unwrap_or_default(),
            )
            .is_ok();
            if ok {
                std::ops::ControlFlow::Continue(())
            } else {
                std::ops::ControlFlow::Break(())
            }
        });
        if read.is_err() || !ok {
            return Ok(Some(h.base_offset));
        }
        at += h.size;
    }
    Ok(None)
}
