//! Full head chunks on disk, read back through memory maps, so the head's RAM holds only each
//! series' open chunk.
//!
//! Files are preallocated (sparse) to a fixed size and mapped read-only once; records are written
//! with positional writes into the same page cache the map reads, so a chunk is readable through the
//! map as soon as `write` returns. Files are never truncated while mapped, which is what makes the
//! maps sound (truncating a mapped file turns reads into SIGBUS). Layout: `FORMAT.md`, "Head chunks".

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use memmap2::Mmap;

/// File magic: identifies a head-chunks file.
const MAGIC: u32 = 0x0130_BC91;
const FORMAT_VERSION: u8 = 1;
const FILE_HEADER: u64 = 8;
/// series ref, mint, maxt, encoding, data length.
const RECORD_HEADER: usize = 8 + 8 + 8 + 1 + 4;
const CRC_LEN: usize = 4;
/// The only chunk encoding so far: Prometheus's XOR.
pub(crate) const ENCODING_XOR: u8 = 1;

/// Where a chunk lives: file sequence number in the high 32 bits, byte offset in the low 32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChunkRef(pub u64);

impl ChunkRef {
    fn new(seq: u32, offset: u64) -> ChunkRef {
        ChunkRef((u64::from(seq) << 32) | offset)
    }
    fn seq(self) -> u32 {
        (self.0 >> 32) as u32
    }
    fn offset(self) -> usize {
        (self.0 & 0xffff_ffff) as usize
    }
}

/// Why head chunks could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum HeadChunksError {
    /// A file operation failed.
    #[error("head chunks {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A chunk reference points outside any live file or at a damaged record.
    #[error("head chunk {0:#x}: {1}")]
    BadRef(u64, &'static str),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> HeadChunksError + '_ {
    move |source| HeadChunksError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A chunk found on disk at start-up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ReplayedChunk {
    pub series: u64,
    pub mint: i64,
    pub maxt: i64,
    pub cref: ChunkRef,
}

/// What start-up found wrong in the head chunk files; the records before the damage are kept.
#[derive(Debug, Default, Clone)]
pub struct HeadChunksRepair {
    /// One line per damaged file: which file, at which offset, why.
    pub problems: Vec<String>,
}

struct MappedFile {
    map: Mmap,
}

struct Writer {
    file: File,
    seq: u32,
    offset: u64,
    buf: Vec<u8>,
}

/// The head-chunks directory.
pub(crate) struct ChunkDiskMapper {
    dir: PathBuf,
    file_size: u64,
    files: RwLock<BTreeMap<u32, Arc<MappedFile>>>,
    writer: Mutex<Option<Writer>>,
    /// Newest sample time in each file, so retention can delete whole files.
    file_maxt: Mutex<BTreeMap<u32, i64>>,
}

/// A chunk's bytes, borrowed from a mapped file kept alive by the handle.
#[derive(Clone)]
pub(crate) struct MappedChunk {
    file: Arc<MappedFile>,
    start: usize,
    len: usize,
}

impl MappedChunk {
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.file.map[self.start..self.start + self.len]
    }
}

fn file_name(seq: u32) -> String {
    format!("{seq:06}")
}

impl ChunkDiskMapper {
    /// Opens `dir`, reading every record of every file. Damage (a torn last record after a crash, a
    /// flipped byte) ends that file's records at the damage; everything before it is returned.
    pub(crate) fn open(
        dir: &Path,
        file_size: u64,
    ) -> Result<(ChunkDiskMapper, Vec<ReplayedChunk>, HeadChunksRepair), HeadChunksError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut seqs: Vec<u32> = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        seqs.sort_unstable();
        let mut files = BTreeMap::new();
        let mut chunks = Vec::new();
        let mut repair = HeadChunksRepair::default();
        for seq in seqs {
            let path = dir.join(file_name(seq));
            let file = File::open(&path).map_err(io(&path))?;
            let len = file.metadata().map_err(io(&path))?.len();
            if len < FILE_HEADER {
                // A crash (or a full disk) between creating a file and preallocating it: nothing
                // was ever written to it.
                repair.problems.push(format!(
                    "{}: {len} bytes, shorter than a file header; removed",
                    path.display()
                ));
                drop(file);
                std::fs::remove_file(&path).map_err(io(&path))?;
                continue;
            }
            // SAFETY: files in this directory are only ever extended by this process and never
            // truncated while mapped; the data directory is owned by one edgeprom process.
            let map = unsafe { Mmap::map(&file) }.map_err(io(&path))?;
            let written = written_len(&file, len);
            if let Some(problem) = scan(seq, &map[..written], &mut chunks) {
                repair
                    .problems
                    .push(format!("{}: {problem}", path.display()));
            }
            files.insert(seq, Arc::new(MappedFile { map }));
        }
        let mut file_maxt = BTreeMap::new();
        for c in &chunks {
            let e = file_maxt.entry(c.cref.seq()).or_insert(i64::MIN);
            *e = (*e).max(c.maxt);
        }
        Ok((
            ChunkDiskMapper {
                dir: dir.to_path_buf(),
                file_size,
                files: RwLock::new(files),
                writer: Mutex::new(None),
                file_maxt: Mutex::new(file_maxt),
            },
            chunks,
            repair,
        ))
    }

    /// Appends one chunk and returns where it is. The chunk is readable as soon as this returns.
    pub(crate) fn write(
        &self,
        series: u64,
        mint: i64,
        maxt: i64,
        data: &[u8],
    ) -> Result<ChunkRef, HeadChunksError> {
        let need = (RECORD_HEADER + data.len() + CRC_LEN) as u64;
        let mut guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let full = guard
            .as_ref()
            .is_none_or(|w| w.offset + need > self.file_size);
        if full {
            *guard = Some(self.cut(need)?);
        }
        let Some(w) = guard.as_mut() else {
            return Err(HeadChunksError::BadRef(0, "no writable file"));
        };
        w.buf.clear();
        w.buf.extend_from_slice(&series.to_be_bytes());
        w.buf.extend_from_slice(&mint.to_be_bytes());
        w.buf.extend_from_slice(&maxt.to_be_bytes());
        w.buf.push(ENCODING_XOR);
        w.buf.extend_from_slice(&(data.len() as u32).to_be_bytes());
        w.buf.extend_from_slice(data);
        let crc = crc32c::crc32c(&w.buf);
        w.buf.extend_from_slice(&crc.to_be_bytes());
        let path = self.dir.join(file_name(w.seq));
        // A failed or partial write leaves `offset` where it was: the next chunk overwrites the
        // torn bytes, and a crash before that leaves a record whose CRC ends the file's scan.
        crate::fault::check(&path)
            .and_then(|()| w.file.write_all_at(&w.buf, w.offset))
            .map_err(io(&path))?;
        let r = ChunkRef::new(w.seq, w.offset);
        w.offset += need;
        let mut file_maxt = self.file_maxt.lock().unwrap_or_else(|e| e.into_inner());
        let e = file_maxt.entry(w.seq).or_insert(i64::MIN);
        *e = (*e).max(maxt);
        Ok(r)
    }

    /// Starts a new preallocated file, mapped before anything is written to it.
    fn cut(&self, need: u64) -> Result<Writer, HeadChunksError> {
        let seq = self
            .files
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .next_back()
            .map_or(1, |s| s + 1);
        let path = self.dir.join(file_name(seq));
        crate::fault::check(&path).map_err(io(&path))?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io(&path))?;
        let size = self.file_size.max(FILE_HEADER + need);
        let mut header = [0u8; FILE_HEADER as usize];
        header[..4].copy_from_slice(&MAGIC.to_be_bytes());
        header[4] = FORMAT_VERSION;
        let prepared = crate::fault::check(&path)
            .and_then(|()| file.write_all_at(&header, 0))
            .and_then(|()| file.set_len(size))
            // SAFETY: see `open`; the file now has its final length and is never truncated while
            // mapped.
            .and_then(|()| unsafe { Mmap::map(&file) });
        let map = match prepared {
            Ok(map) => map,
            Err(e) => {
                // Not yet mapped or known: remove it, or the retry's `create_new` of the same
                // sequence number would fail for ever once space returns.
                drop(file);
                let _ = std::fs::remove_file(&path);
                return Err(io(&path)(e));
            }
        };
        self.files
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(seq, Arc::new(MappedFile { map }));
        Ok(Writer {
            file,
            seq,
            offset: FILE_HEADER,
            buf: Vec::with_capacity(512),
        })
    }

    /// The bytes of a chunk written earlier, checked against the record's CRC.
    pub(crate) fn chunk(&self, r: ChunkRef) -> Result<MappedChunk, HeadChunksError> {
        let file = self
            .files
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&r.seq())
            .cloned()
            .ok_or(HeadChunksError::BadRef(r.0, "file deleted"))?;
        let (start, len) = record_at(&file.map, r.offset())
            .ok_or(HeadChunksError::BadRef(r.0, "damaged record"))?;
        Ok(MappedChunk { file, start, len })
    }

    /// A chunk's time range from its record header, without checking the CRC: cheap enough to call
    /// per chunk per query, so the head need not keep the bounds in RAM.
    pub(crate) fn bounds(&self, r: ChunkRef) -> Option<(i64, i64)> {
        let files = self.files.read().unwrap_or_else(|e| e.into_inner());
        let map = &files.get(&r.seq())?.map;
        let at = |i: usize| {
            let b = map.get(r.offset() + i..r.offset() + i + 8)?;
            Some(i64::from_be_bytes(b.try_into().ok()?))
        };
        Some((at(8)?, at(16)?))
    }

    /// Deletes files whose every chunk ends before `cutoff`, except the one being written.
    /// Queries still holding a chunk of a deleted file keep reading it; the OS frees it after.
    pub(crate) fn delete_files_before(&self, cutoff: i64) -> Result<usize, HeadChunksError> {
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        // The file being written goes too once everything in it is old (e.g. after the whole head
        // was flushed to blocks); the next chunk starts a new file.
        let writer_done = writer.as_ref().is_some_and(|w| {
            let file_maxt = self.file_maxt.lock().unwrap_or_else(|e| e.into_inner());
            file_maxt.get(&w.seq).is_none_or(|m| *m < cutoff)
        });
        if writer_done {
            *writer = None;
        }
        let writer_seq = writer.as_ref().map(|w| w.seq);
        drop(writer);
        let mut files = self.files.write().unwrap_or_else(|e| e.into_inner());
        let mut file_maxt = self.file_maxt.lock().unwrap_or_else(|e| e.into_inner());
        let doomed: Vec<u32> = files
            .keys()
            .copied()
            .filter(|s| Some(*s) != writer_seq)
            .filter(|s| file_maxt.get(s).is_none_or(|m| *m < cutoff))
            .collect();
        for s in &doomed {
            files.remove(s);
            file_maxt.remove(s);
            let path = self.dir.join(file_name(*s));
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
        Ok(doomed.len())
    }
}

/// How much of a preallocated file may hold records: up to its first hole. Records are written
/// from the start without gaps, so nothing lies beyond it, and the scan must not look there: on
/// tmpfs, touching a hole through a shared map allocates a page, which on a full file system is a
/// SIGBUS instead of an error. Where holes cannot be found (no `SEEK_HOLE`), the whole file.
fn written_len(file: &File, len: u64) -> usize {
    use std::os::fd::AsRawFd;
    // SAFETY: lseek on a descriptor this function borrows; it only moves the file offset, which
    // nothing else uses (the mapper reads through the map and writes with positional writes).
    let hole = unsafe {
        libc::lseek(
            file.as_raw_fd(),
            FILE_HEADER as libc::off_t,
            libc::SEEK_HOLE,
        )
    };
    let end = u64::try_from(hole).map_or(len, |h| h.min(len));
    usize::try_from(end).unwrap_or(usize::MAX)
}

/// The data range of the record at `offset`, if it is complete and its CRC matches.
fn record_at(map: &[u8], offset: usize) -> Option<(usize, usize)> {
    let header = map.get(offset..offset + RECORD_HEADER)?;
    let len = u32::from_be_bytes(header[25..29].try_into().ok()?) as usize;
    let data_start = offset + RECORD_HEADER;
    let end = data_start.checked_add(len)?;
    let stored = map.get(end..end + CRC_LEN)?;
    let crc = crc32c::crc32c(map.get(offset..end)?);
    (crc.to_be_bytes() == stored).then_some((data_start, len))
}

/// Reads a file's records into `out`; returns a description of damage that ended the scan early.
fn scan(seq: u32, map: &[u8], out: &mut Vec<ReplayedChunk>) -> Option<String> {
    if map.len() < FILE_HEADER as usize || map[..4] != MAGIC.to_be_bytes() {
        return Some("bad magic; file ignored".into());
    }
    let mut offset = FILE_HEADER as usize;
    while offset + RECORD_HEADER <= map.len() {
        let header = &map[offset..offset + RECORD_HEADER];
        // Preallocated space reads as zeros: the end of what was written.
        if header.iter().all(|b| *b == 0) {
            return None;
        }
        let Some((start, len)) = record_at(map, offset) else {
            return Some(format!(
                "damaged record at offset {offset}; later records ignored"
            ));
        };
        let field = |i: usize| i64::from_be_bytes(header[i..i + 8].try_into().unwrap_or([0; 8]));
        out.push(ReplayedChunk {
            series: field(0) as u64,
            mint: field(8),
            maxt: field(16),
            cref: ChunkRef::new(seq, offset as u64),
        });
        offset = start + len + CRC_LEN;
    }
    None
}

#[cfg(test)]
#[path = "../tests/support/tmpfs.rs"]
mod tmpfs;

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("edgeprom-hc-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn written_chunks_read_back_and_survive_reopen() {
        let d = dir("reopen");
        let (m, found, _) = ChunkDiskMapper::open(&d, 4096).unwrap();
        assert!(found.is_empty());
        let a = m.write(7, 100, 200, b"hello").unwrap();
        let b = m.write(8, 300, 400, b"world!").unwrap();
        assert_eq!(m.chunk(a).unwrap().bytes(), b"hello");
        assert_eq!(m.chunk(b).unwrap().bytes(), b"world!");
        drop(m);
        let (m, found, repair) = ChunkDiskMapper::open(&d, 4096).unwrap();
        assert!(repair.problems.is_empty());
        assert_eq!(
            found,
            [
                ReplayedChunk {
                    series: 7,
                    mint: 100,
                    maxt: 200,
                    cref: a
                },
                ReplayedChunk {
                    series: 8,
                    mint: 300,
                    maxt: 400,
                    cref: b
                },
            ]
        );
        // New writes after a restart go to a new file; old refs stay valid.
        let c = m.write(9, 500, 600, b"again").unwrap();
        assert_ne!(c.seq(), a.seq());
        assert_eq!(m.chunk(a).unwrap().bytes(), b"hello");
    }

    #[test]
    fn files_are_cut_when_full_and_old_ones_deleted() {
        let d = dir("cut");
        let (m, _, _) = ChunkDiskMapper::open(&d, 256).unwrap();
        let refs: Vec<ChunkRef> = (0..20)
            .map(|i| m.write(i, i as i64, i as i64, &[i as u8; 100]).unwrap())
            .collect();
        assert!(refs.last().unwrap().seq() > refs[0].seq());
        // Files holding only chunks older than 10 go; the one with chunk 10 stays.
        assert!(m.delete_files_before(10).unwrap() > 0);
        assert!(m.chunk(refs[0]).is_err());
        assert_eq!(m.chunk(refs[10]).unwrap().bytes(), &[10u8; 100]);
        assert_eq!(
            m.chunk(*refs.last().unwrap()).unwrap().bytes(),
            &[19u8; 100]
        );
    }

    #[test]
    fn a_flipped_byte_keeps_the_earlier_records() {
        let d = dir("flip");
        let (m, _, _) = ChunkDiskMapper::open(&d, 4096).unwrap();
        m.write(1, 0, 1, b"first").unwrap();
        let second = m.write(2, 2, 3, b"second").unwrap();
        m.write(3, 4, 5, b"third").unwrap();
        drop(m);
        let path = d.join(file_name(second.seq()));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[second.offset() + RECORD_HEADER + 1] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
        let (_, found, repair) = ChunkDiskMapper::open(&d, 4096).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].series, 1);
        assert_eq!(repair.problems.len(), 1, "{:?}", repair.problems);
    }

    /// On tmpfs, reading a never-written page through a shared map allocates it; with the file
    /// system full that is a SIGBUS, which would kill the process at start-up. The scan must stop
    /// where the writes stopped.
    #[test]
    fn start_up_on_a_full_tmpfs_reads_no_unwritten_page() {
        let at = dir("full-tmpfs");
        let Some(fs) = super::tmpfs::Tmpfs::mount(at, "2m") else {
            eprintln!("no size-limited tmpfs on this machine (needs root); nothing checked");
            return;
        };
        let chunks = fs.path().join("chunks_head");
        let (m, _, _) = ChunkDiskMapper::open(&chunks, 1 << 20).unwrap();
        // One record ending exactly at the first page's end, so the next header to look at is
        // on the second page, which nothing was written to.
        let data = vec![0xab; 4096 - FILE_HEADER as usize - RECORD_HEADER - CRC_LEN];
        m.write(7, 1000, 2000, &data).unwrap();
        drop(m);
        let filler = fs.fill("filler");
        let (_, found, repair) = ChunkDiskMapper::open(&chunks, 1 << 20).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].series, found[0].mint, found[0].maxt),
            (7, 1000, 2000)
        );
        assert!(repair.problems.is_empty(), "{:?}", repair.problems);
        std::fs::remove_file(filler).unwrap();
    }
}
