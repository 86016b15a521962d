//! Cutting a damaged log at its first damage, when an operator asks for it
//! (`cohort repair`). Every batch is read with its CRC checked and the offsets
//! are followed across segments; at the first batch that is torn, corrupt, or
//! does not continue the offsets, the log is cut. Nothing is deleted: the cut
//! bytes and every later segment are moved into `aside`, where the operator
//! can inspect them or copy them back.

use crate::recover::segment_bases;
use crate::segment::{self, Segment};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// What a repair did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Repaired {
    /// Where the log was cut: (file, byte, offset), and why.
    pub cut: Option<(PathBuf, u64, u64, String)>,
    /// Files moved aside (the cut tail is saved as `<segment>.log.cut`).
    pub moved: Vec<PathBuf>,
    pub bytes_moved: u64,
    /// The log's offsets after the repair: [start, end).
    pub start_offset: u64,
    pub end_offset: u64,
}

fn move_aside(from: &Path, aside: &Path, moved: &mut Vec<PathBuf>) -> io::Result<()> {
    if !from.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(aside)?;
    let to = aside.join(from.file_name().unwrap());
    std::fs::rename(from, &to)?;
    moved.push(to);
    Ok(())
}

/// Verifies the log in `dir` and cuts it at the first damage (see the module
/// comment). With `dry_run`, only reports what it would do.
pub fn repair(dir: &Path, aside: &Path, dry_run: bool) -> io::Result<Repaired> {
    let mut out = Repaired::default();
    if !dir.is_dir() {
        if !dry_run {
            std::fs::create_dir_all(dir)?;
        }
        return Ok(out);
    }
    let bases = segment_bases(dir)?;
    out.start_offset = bases.first().copied().unwrap_or(0);
    let mut expected: Option<u64> = None;
    let mut cut_from: Option<usize> = None;
    for (i, &base) in bases.iter().enumerate() {
        if let Some(next) = expected {
            if base != next {
                out.cut = Some((
                    segment::log_path(dir, base),
                    0,
                    next,
                    format!("offsets jump from {next} to {base}"),
                ));
                cut_from = Some(i);
                break;
            }
        }
        let file = Segment::open_file(dir, base)?;
        let scan = Segment::scan_file(&file, base, true)?;
        let len = file.metadata()?.len();
        expected = Some(scan.next_offset(base));
        if let Some(why) = scan.stopped.clone() {
            let at = scan.next_offset(base);
            out.cut = Some((segment::log_path(dir, base), scan.valid_len, at, why));
            out.bytes_moved += len - scan.valid_len;
            if !dry_run {
                std::fs::create_dir_all(aside)?;
                let tail_path = aside.join(format!("{base:020}.log.cut"));
                let mut tail = vec![0u8; (len - scan.valid_len) as usize];
                file.read_exact_at(&mut tail, scan.valid_len)?;
                std::fs::write(&tail_path, &tail)?;
                out.moved.push(tail_path);
                file.set_len(scan.valid_len)?;
                file.sync_all()?;
                // Its indexes may point past the cut: rebuilt at the next open.
                for p in [
                    segment::index_path(dir, base),
                    segment::time_index_path(dir, base),
                ] {
                    match std::fs::remove_file(p) {
                        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                        _ => {}
                    }
                }
            }
            cut_from = Some(i + 1);
            break;
        }
    }
    if let Some(from) = cut_from {
        for &base in &bases[from..] {
            let path = segment::log_path(dir, base);
            out.bytes_moved += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if dry_run {
                out.moved.push(path);
                continue;
            }
            for p in [
                path,
                segment::index_path(dir, base),
                segment::time_index_path(dir, base),
            ] {
                move_aside(&p, aside, &mut out.moved)?;
            }
        }
        if !dry_run {
            std::fs::File::open(dir)?.sync_all()?;
        }
    }
    out.end_offset = expected.unwrap_or(out.start_offset);
    Ok(out)
}
