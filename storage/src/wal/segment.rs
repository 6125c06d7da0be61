//! Segment files on disk: naming, listing, and the frame scanner shared by open, repair,
//! replay and checkpoint.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::WalError;
use super::encoding::{FLAG_MORE, HEADER_LEN, TYPE_MAX, TYPE_SERIES, frame_crc};

pub(crate) const CHECKPOINT_PREFIX: &str = "checkpoint.";
pub(crate) const TMP_SUFFIX: &str = ".tmp";
/// Read size of the scanner; large enough that syscalls vanish from a replay profile, small enough
/// for an edge device.
const READ_CHUNK: usize = 1 << 20;

pub(crate) fn segment_name(n: u32) -> String {
    format!("{n:08}")
}

pub(crate) fn segment_path(dir: &Path, n: u32) -> PathBuf {
    dir.join(segment_name(n))
}

pub(crate) fn checkpoint_path(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("{CHECKPOINT_PREFIX}{n:08}"))
}

pub(crate) fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> WalError + 'a {
    move |source| WalError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Parses a segment file name: decimal digits only (so `checkpoint.*`, `*.tmp` and stray files
/// are never mistaken for segments).
pub(crate) fn parse_segment_name(name: &str) -> Option<u32> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

/// The segment numbers in `dir`, ascending.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<u32>, WalError> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io_err("listing", dir))? {
        let e = e.map_err(io_err("listing", dir))?;
        if let Some(n) = e.file_name().to_str().and_then(parse_segment_name)
            && e.file_type().map(|t| t.is_file()).unwrap_or(false)
        {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Finished checkpoints (`checkpoint.NNNNNNNN` directories) and unfinished ones (`.tmp`).
pub(crate) struct Checkpoints {
    pub(crate) done: Vec<u32>,
    pub(crate) tmp: Vec<PathBuf>,
}

pub(crate) fn list_checkpoints(dir: &Path) -> Result<Checkpoints, WalError> {
    let mut done = Vec::new();
    let mut tmp = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io_err("listing", dir))? {
        let e = e.map_err(io_err("listing", dir))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(CHECKPOINT_PREFIX) else {
            continue;
        };
        if rest.ends_with(TMP_SUFFIX) {
            tmp.push(e.path());
        } else if let Some(n) = parse_segment_name(rest)
            && e.file_type().map(|t| t.is_dir()).unwrap_or(false)
        {
            done.push(n);
        }
    }
    done.sort_unstable();
    Ok(Checkpoints { done, tmp })
}

/// Fsyncs a directory so that creations, renames and deletions in it survive power loss.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), WalError> {
    #[cfg(unix)]
    {
        crate::fault::check(dir)
            .and_then(|()| File::open(dir))
            .and_then(|d| d.sync_all())
            .map_err(io_err("syncing directory", dir))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// What a full scan of one segment found.
#[derive(Debug, Clone)]
pub(crate) struct Scan {
    pub(crate) file_len: u64,
    /// End of the last complete commit: everything before it is good.
    pub(crate) good_end: u64,
    /// Frames in complete commits.
    pub(crate) good_frames: u64,
    /// Intact frames after `good_end` whose commit never completed.
    pub(crate) orphan_frames: u64,
    /// The first bad frame: its offset and why.
    pub(crate) bad: Option<(u64, String)>,
}

impl Scan {
    pub(crate) fn is_clean(&self) -> bool {
        self.bad.is_none() && self.orphan_frames == 0
    }

    /// One line for a report: where the segment stops being usable and why.
    pub(crate) fn describe(&self) -> String {
        match &self.bad {
            Some((off, why)) => format!("{why} at offset {off}"),
            None => format!(
                "commit not completed: {} record(s) after offset {} lack their commit's last record",
                self.orphan_frames, self.good_end
            ),
        }
    }
}

struct FrameReader<R> {
    r: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// File offset of `buf[start]`.
    offset: u64,
    file_len: u64,
}

impl<R: Read> FrameReader<R> {
    /// Makes at least `n` bytes available unless the file ends first; returns whether it did.
    fn fill(&mut self, n: usize) -> io::Result<bool> {
        if self.end - self.start >= n {
            return Ok(true);
        }
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        let want = n.max(READ_CHUNK);
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        while self.end < n {
            match self.r.read(&mut self.buf[self.end..]) {
                Ok(0) => return Ok(false),
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

/// Reads every frame of `path` in order, handing each intact one to `on_frame` as
/// `(type without flag, payload, last frame of its commit)`. A callback error (a payload that
/// does not decode) counts as a bad frame at that offset. Never panics on any file content, and
/// never allocates more than the file's size.
pub(crate) fn scan(
    path: &Path,
    mut on_frame: impl FnMut(u8, &[u8], bool) -> Result<(), String>,
) -> Result<Scan, WalError> {
    let f = File::open(path).map_err(io_err("opening", path))?;
    let file_len = f.metadata().map_err(io_err("stat", path))?.len();
    let mut rd = FrameReader {
        r: f,
        buf: Vec::new(),
        start: 0,
        end: 0,
        offset: 0,
        file_len,
    };
    let mut s = Scan {
        file_len,
        good_end: 0,
        good_frames: 0,
        orphan_frames: 0,
        bad: None,
    };
    let mut pending = 0u64;
    loop {
        let at = rd.offset;
        if !rd.fill(HEADER_LEN).map_err(io_err("reading", path))? {
            if rd.end > rd.start {
                s.bad = Some((at, "torn frame header".into()));
            }
            break;
        }
        let h = &rd.buf[rd.start..rd.start + HEADER_LEN];
        let ty = h[0];
        let len = u32::from_le_bytes([h[1], h[2], h[3], h[4]]) as usize;
        let crc = u32::from_le_bytes([h[5], h[6], h[7], h[8]]);
        let kind = ty & !FLAG_MORE;
        if !(TYPE_SERIES..=TYPE_MAX).contains(&kind) {
            let why = if h.iter().all(|&b| b == 0) {
                "zero-filled tail (preallocated or unwritten blocks)".to_string()
            } else {
                format!("unknown frame type {ty:#04x}")
            };
            s.bad = Some((at, why));
            break;
        }
        // Checked against the file size first, so a corrupt length cannot make us allocate.
        let frame_len = HEADER_LEN as u64 + len as u64;
        if at + frame_len > rd.file_len {
            s.bad = Some((
                at,
                format!(
                    "torn frame: claims {len} payload bytes, only {} remain",
                    rd.file_len.saturating_sub(at + HEADER_LEN as u64)
                ),
            ));
            break;
        }
        if !rd.fill(HEADER_LEN + len).map_err(io_err("reading", path))? {
            // The file shrank under us; the data is not there either way.
            s.bad = Some((at, "torn frame: file ended early".into()));
            break;
        }
        let payload = &rd.buf[rd.start + HEADER_LEN..rd.start + HEADER_LEN + len];
        if frame_crc(ty, payload) != crc {
            s.bad = Some((at, "checksum mismatch".into()));
            break;
        }
        let last = ty & FLAG_MORE == 0;
        if let Err(why) = on_frame(kind, payload, last) {
            s.bad = Some((at, format!("undecodable record: {why}")));
            break;
        }
        rd.start += HEADER_LEN + len;
        rd.offset += frame_len;
        pending += 1;
        if last {
            s.good_frames += pending;
            pending = 0;
            s.good_end = rd.offset;
        }
    }
    s.orphan_frames = pending;
    Ok(s)
}
