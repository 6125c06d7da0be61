//! How far a remote-write queue has been acknowledged, per shard, kept on disk so that a restart
//! resumes exactly there: nothing the receiver acknowledged is sent again (Prometheus-style
//! receivers reject a resent sample older than the series' newest), nothing unacknowledged is lost.
//!
//! File `<data>/remote/<queue name>.progress`, little-endian:
//!
//! ```text
//! magic "EPRWPOS1" (8) | url hash u64 (8) | shard count n u32 (4) | n × (segment u32, offset u64) | CRC32 u32
//! ```
//!
//! Shard `i` of `n` has sent every sample of the series that hash to it from WAL commits ending at
//! or before its position. The whole file is rewritten with one positioned write after every
//! acknowledged batch: a `kill -9` cannot tear it, and a torn file after power loss fails its CRC.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use edgeprom_storage::wal::WalPosition;

const MAGIC: &[u8; 8] = b"EPRWPOS2";
const SLOT: usize = 16;

/// How far one shard has been acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct ShardPosition {
    /// End of the last WAL commit whose samples for the shard were all acknowledged.
    pub done: WalPosition,
    /// Of the shard's samples in the next commit that has any, how many were acknowledged.
    pub sent: u32,
}

impl ShardPosition {
    /// Everything before `done`, nothing after.
    pub fn at(done: WalPosition) -> ShardPosition {
        ShardPosition { done, sent: 0 }
    }
}

/// Positions read back from a progress file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// Per shard, how far it was acknowledged.
    pub shards: Vec<ShardPosition>,
}

impl Saved {
    /// The oldest position any shard still needs: reading resumes here.
    pub fn resume_from(&self) -> WalPosition {
        self.shards.iter().map(|s| s.done).min().unwrap_or_default()
    }
}

/// Why a progress file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ProgressError {
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The progress file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The file is not a progress file, is torn, or belongs to another URL.
    #[error("{path}: {reason}")]
    Invalid {
        /// The progress file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// The open progress file of one queue.
pub struct Progress {
    path: PathBuf,
    file: File,
    url_hash: u64,
    shards: Vec<ShardPosition>,
    buf: Vec<u8>,
}

/// A stable hash of the receiver URL: a queue renamed onto another URL must not resume there.
pub fn url_hash(url: &str) -> u64 {
    // FNV-1a: stable across builds and platforms, unlike `DefaultHasher`.
    url.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Progress {
    /// Reads the saved positions in `path`, if it holds a valid file for `url_hash`.
    pub fn load(path: &Path, url_hash: u64) -> Result<Option<Saved>, ProgressError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(ProgressError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let invalid = |reason| ProgressError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        if bytes.len() < 24 || &bytes[..8] != MAGIC {
            return Err(invalid("not a remote-write progress file"));
        }
        let n = u32::from_le_bytes(bytes[16..20].try_into().unwrap_or_default()) as usize;
        let body = 20 + n * SLOT;
        if bytes.len() != body + 4 {
            return Err(invalid("length does not match its shard count"));
        }
        let crc = u32::from_le_bytes(bytes[body..].try_into().unwrap_or_default());
        if crc32c::crc32c(&bytes[..body]) != crc {
            return Err(invalid("checksum mismatch"));
        }
        if u64::from_le_bytes(bytes[8..16].try_into().unwrap_or_default()) != url_hash {
            return Err(invalid("written for another URL"));
        }
        let shards = bytes[20..body]
            .chunks_exact(SLOT)
            .map(|s| ShardPosition {
                done: WalPosition {
                    segment: u32::from_le_bytes(s[..4].try_into().unwrap_or_default()),
                    offset: u64::from_le_bytes(s[4..12].try_into().unwrap_or_default()),
                },
                sent: u32::from_le_bytes(s[12..].try_into().unwrap_or_default()),
            })
            .collect();
        Ok(Some(Saved { shards }))
    }

    /// Creates (or replaces) the file with `shards` positions.
    pub fn create(
        path: &Path,
        url_hash: u64,
        shards: Vec<ShardPosition>,
    ) -> Result<Progress, ProgressError> {
        let io_err = |source| ProgressError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io_err)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(path)
            .map_err(io_err)?;
        let mut p = Progress {
            path: path.to_path_buf(),
            file,
            url_hash,
            shards,
            buf: Vec::new(),
        };
        p.write()?;
        Ok(p)
    }

    /// The positions as last written.
    pub fn shards(&self) -> &[ShardPosition] {
        &self.shards
    }

    /// Moves shard `i` forward to `pos` (never back) and writes the file.
    pub fn advance(&mut self, i: usize, pos: ShardPosition) -> Result<(), ProgressError> {
        match self.shards.get_mut(i) {
            Some(p) if *p < pos => *p = pos,
            _ => return Ok(()),
        }
        self.write()
    }

    fn write(&mut self) -> Result<(), ProgressError> {
        self.buf.clear();
        self.buf.extend_from_slice(MAGIC);
        self.buf.extend_from_slice(&self.url_hash.to_le_bytes());
        self.buf
            .extend_from_slice(&(self.shards.len() as u32).to_le_bytes());
        for p in &self.shards {
            self.buf.extend_from_slice(&p.done.segment.to_le_bytes());
            self.buf.extend_from_slice(&p.done.offset.to_le_bytes());
            self.buf.extend_from_slice(&p.sent.to_le_bytes());
        }
        let crc = crc32c::crc32c(&self.buf);
        self.buf.extend_from_slice(&crc.to_le_bytes());
        // Same length every time for a given shard count, so one write replaces it in place.
        self.file
            .write_all_at(&self.buf, 0)
            .map_err(|source| ProgressError::Io {
                path: self.path.clone(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(segment: u32, offset: u64) -> ShardPosition {
        ShardPosition::at(WalPosition { segment, offset })
    }

    #[test]
    fn positions_round_trip_and_only_move_forward() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("remote/q.progress");
        let h = url_hash("http://127.0.0.1:9/api/v1/write");
        assert_eq!(Progress::load(&path, h).unwrap(), None);
        let mut p = Progress::create(&path, h, vec![pos(3, 10); 3]).unwrap();
        p.advance(1, pos(4, 0)).unwrap();
        p.advance(2, pos(3, 5)).unwrap();
        let partial = ShardPosition {
            sent: 7,
            ..pos(3, 10)
        };
        p.advance(0, partial).unwrap();
        let saved = Progress::load(&path, h).unwrap().unwrap();
        assert_eq!(saved.shards, vec![partial, pos(4, 0), pos(3, 10)]);
        assert_eq!(saved.resume_from(), pos(3, 10).done);
    }

    #[test]
    fn a_torn_foreign_or_strange_file_is_refused_with_the_reason() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("q.progress");
        let h = url_hash("a");
        Progress::create(&path, h, vec![pos(1, 2)]).unwrap();
        let err = Progress::load(&path, url_hash("b")).unwrap_err();
        assert!(err.to_string().contains("another URL"), "{err}");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[22] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let err = Progress::load(&path, h).unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
        std::fs::write(&path, b"hello").unwrap();
        assert!(Progress::load(&path, h).is_err());
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        assert!(Progress::load(&path, h).is_err());
    }
}
