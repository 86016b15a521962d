//! Open segment files, bounded. A broker with 100,000 partitions cannot keep a
//! descriptor per segment open, so segments name their file and borrow a
//! descriptor from one process-wide cache, least recently used first out.
//!
//! Closing a file with unsynced data loses nothing: Linux's fsync on a
//! descriptor opened later writes the file's dirty pages too, and reports a
//! write-back error no descriptor has seen yet (errseq), so the syncer may
//! reopen what the cache closed.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

pub struct FileCache {
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    open: HashMap<PathBuf, (Arc<File>, u64)>,
    /// Last use -> path, oldest first.
    by_use: BTreeMap<u64, PathBuf>,
    clock: u64,
    opened: u64,
}

static FILES: OnceLock<Arc<FileCache>> = OnceLock::new();
static CAPACITY: OnceLock<usize> = OnceLock::new();

/// Sets how many segment files stay open at most; call before any log is
/// opened (later calls are ignored).
pub fn set_max_open_files(n: usize) {
    let _ = CAPACITY.set(n.max(16));
}

/// The process-wide cache.
pub fn files() -> &'static Arc<FileCache> {
    FILES.get_or_init(|| FileCache::new(*CAPACITY.get_or_init(|| 1024)))
}

impl FileCache {
    pub fn new(capacity: usize) -> Arc<FileCache> {
        Arc::new(FileCache {
            capacity: capacity.max(1),
            state: Mutex::new(State::default()),
        })
    }

    fn touch(st: &mut State, path: &Path) {
        st.clock += 1;
        let clock = st.clock;
        if let Some((_, used)) = st.open.get_mut(path) {
            let old = std::mem::replace(used, clock);
            let p = st.by_use.remove(&old).expect("indexed");
            st.by_use.insert(clock, p);
        }
    }

    fn admit(&self, st: &mut State, path: &Path, file: File) -> Arc<File> {
        while st.open.len() >= self.capacity {
            let (_, oldest) = st.by_use.pop_first().expect("not empty");
            st.open.remove(&oldest);
        }
        st.clock += 1;
        let file = Arc::new(file);
        st.open.insert(path.to_path_buf(), (file.clone(), st.clock));
        st.by_use.insert(st.clock, path.to_path_buf());
        file
    }

    /// The file at `path`, opened for reading and writing if it is not open.
    pub fn get(&self, path: &Path) -> io::Result<Arc<File>> {
        let mut st = self.state.lock().unwrap();
        if let Some((f, _)) = st.open.get(path) {
            let f = f.clone();
            FileCache::touch(&mut st, path);
            return Ok(f);
        }
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        st.opened += 1;
        Ok(self.admit(&mut st, path, file))
    }

    /// A file just created or opened by the caller.
    pub fn insert(&self, path: &Path, file: File) -> Arc<File> {
        let mut st = self.state.lock().unwrap();
        if let Some((_, used)) = st.open.remove(path) {
            st.by_use.remove(&used);
        }
        self.admit(&mut st, path, file)
    }

    /// Closes the file at `path` (it is being removed or renamed).
    pub fn forget(&self, path: &Path) {
        let mut st = self.state.lock().unwrap();
        if let Some((_, used)) = st.open.remove(path) {
            st.by_use.remove(&used);
        }
    }

    /// Closes every file under `dir`.
    pub fn forget_dir(&self, dir: &Path) {
        let mut st = self.state.lock().unwrap();
        let gone: Vec<PathBuf> = st
            .open
            .keys()
            .filter(|p| p.starts_with(dir))
            .cloned()
            .collect();
        for p in gone {
            if let Some((_, used)) = st.open.remove(&p) {
                st.by_use.remove(&used);
            }
        }
    }

    /// (files open now, files opened since start).
    pub fn stats(&self) -> (usize, u64) {
        let st = self.state.lock().unwrap();
        (st.open.len(), st.opened)
    }
}

/// A segment's file: its path, and a descriptor from the cache when needed.
pub struct SegmentFile {
    path: PathBuf,
}

impl SegmentFile {
    pub fn new(path: PathBuf, file: File) -> SegmentFile {
        files().insert(&path, file);
        SegmentFile { path }
    }

    pub fn get(&self) -> io::Result<Arc<File>> {
        files().get(&self.path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_file_is_closed_first() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileCache::new(3);
        let paths: Vec<PathBuf> = (0..5).map(|i| dir.path().join(format!("{i}"))).collect();
        for p in &paths {
            std::fs::write(p, b"x").unwrap();
        }
        for p in &paths[..3] {
            cache.get(p).unwrap();
        }
        cache.get(&paths[0]).unwrap(); // 1 is now the oldest
        cache.get(&paths[3]).unwrap();
        assert_eq!(cache.stats(), (3, 4));
        cache.get(&paths[0]).unwrap();
        cache.get(&paths[2]).unwrap();
        assert_eq!(cache.stats().1, 4, "0 and 2 stayed open");
        cache.get(&paths[1]).unwrap();
        assert_eq!(cache.stats(), (3, 5), "1 was closed and is reopened");
        cache.forget(&paths[1]);
        assert_eq!(cache.stats().0, 2);
    }

    #[test]
    fn a_file_in_use_outlives_its_eviction() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileCache::new(1);
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, b"aaaa").unwrap();
        std::fs::write(&b, b"bb").unwrap();
        let held = cache.get(&a).unwrap();
        cache.get(&b).unwrap();
        assert_eq!(held.metadata().unwrap().len(), 4);
    }
}
