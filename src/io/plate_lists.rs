//! The watchlist and whitelist files (CONTRACT.md section 7): loaded at start-up, and
//! re-read when their modification time changes, so that an operator edits a file and
//! the next sighting uses it — no restart.
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::config::RideHailingFiles;
use crate::core::detect::ride_hailing::PlateList;

/// Why a list could not be loaded; names the configuration key.
#[derive(Debug, thiserror::Error)]
#[error("{key}: cannot read {path}: {source}")]
pub struct ListError {
    pub key: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

struct Watched {
    key: &'static str,
    path: Option<PathBuf>,
    modified: Option<SystemTime>,
}

impl Watched {
    fn read(&mut self) -> Result<PlateList, ListError> {
        let Some(path) = &self.path else {
            return Ok(PlateList::empty());
        };
        let err = |source| ListError {
            key: self.key,
            path: path.clone(),
            source,
        };
        let modified = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .map_err(err)?;
        let text = std::fs::read_to_string(path).map_err(err)?;
        self.modified = Some(modified);
        Ok(parse_logged(self.key, path, &text))
    }

    fn changed(&self) -> bool {
        let Some(path) = &self.path else {
            return false;
        };
        let now = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        now.is_some() && now != self.modified
    }
}

fn parse_logged(key: &str, path: &Path, text: &str) -> PlateList {
    let (list, problems) = PlateList::parse(text);
    for p in problems.iter().take(20) {
        // The parser's messages carry line numbers, never the plates themselves.
        tracing::warn!(key, file = %path.display(), "{p}");
    }
    tracing::info!(key, file = %path.display(), plates = list.len(), "plate list loaded");
    list
}

pub struct PlateListFiles {
    watch: Watched,
    white: Watched,
}

impl PlateListFiles {
    /// Loads both lists; a configured file that cannot be read stops start-up.
    pub fn load(files: &RideHailingFiles) -> Result<(Self, PlateList, PlateList), ListError> {
        let mut me = PlateListFiles {
            watch: Watched {
                key: "ride_hailing.watchlist_file",
                path: files.watchlist_file.clone(),
                modified: None,
            },
            white: Watched {
                key: "ride_hailing.whitelist_file",
                path: files.whitelist_file.clone(),
                modified: None,
            },
        };
        let watch = me.watch.read()?;
        let white = me.white.read()?;
        Ok((me, watch, white))
    }

    /// New lists when either file changed since the last read; a file that vanished or
    /// cannot be read keeps the lists in force (logged).
    pub fn reload_if_changed(&mut self) -> Option<(PlateList, PlateList)> {
        if !self.watch.changed() && !self.white.changed() {
            return None;
        }
        match (self.watch.read(), self.white.read()) {
            (Ok(w), Ok(b)) => Some((w, b)),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "plate list not reloaded; the previous lists stay in force");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_and_reloads_on_change() {
        let dir = tempfile::tempdir().unwrap();
        let watch = dir.path().join("watch.txt");
        std::fs::write(&watch, "# watchlist\n贵F12345\n").unwrap();
        let files = RideHailingFiles {
            watchlist_file: Some(watch.clone()),
            whitelist_file: None,
        };
        let (mut f, w, b) = PlateListFiles::load(&files).unwrap();
        assert!(w.contains("贵F12345"));
        assert!(b.is_empty());
        assert!(f.reload_if_changed().is_none(), "unchanged");
        // Make sure the modification time moves even on coarse file systems.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&watch, "贵F12345\n贵A54321\n").unwrap();
        let t = SystemTime::now() + std::time::Duration::from_secs(2);
        let _ = std::fs::File::options()
            .write(true)
            .open(&watch)
            .unwrap()
            .set_modified(t);
        let (w, _) = f.reload_if_changed().expect("reloaded");
        assert_eq!(w.len(), 2);
    }

    #[test]
    fn missing_file_names_the_key() {
        let files = RideHailingFiles {
            watchlist_file: None,
            whitelist_file: Some(PathBuf::from("/nonexistent/white.txt")),
        };
        let err = PlateListFiles::load(&files).err().unwrap();
        assert_eq!(err.key, "ride_hailing.whitelist_file");
        assert!(err.to_string().starts_with("ride_hailing.whitelist_file"));
    }
}
