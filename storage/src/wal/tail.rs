//! Reading the WAL while it is being written: remote-write senders follow the log commit by commit
//! instead of keeping their own copy of every sample, so an outage or a restart loses nothing the
//! log still holds.
//!
//! The writer appends each commit with one `write(2)` and only starts segment `n + 1` after
//! segment `n` is complete, so a reader that sees `n + 1` exist knows `n` will not grow. A commit
//! that is only partly visible at the end of the newest segment is simply not returned yet.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::encoding::{self, FLAG_MORE, HEADER_LEN, TYPE_CHUNKS, TYPE_MAX, TYPE_SERIES, frame_crc};
use super::segment::{
    checkpoint_path, io_err, list_checkpoints, list_segments, scan, segment_path,
};
use super::{Record, WalError};

/// A place in the WAL: a segment number and a byte offset in it. Positions handed out by this
/// module are always commit boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct WalPosition {
    /// Segment number (the file name in the WAL directory).
    pub segment: u32,
    /// Byte offset of the next commit in that segment.
    pub offset: u64,
}

/// Which record kinds a reader wants decoded; the others are skipped without decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordKinds(u8);

impl RecordKinds {
    /// Every kind.
    pub const ALL: RecordKinds = RecordKinds(0xff);
    /// Only series definitions.
    pub const SERIES: RecordKinds = RecordKinds(1 << TYPE_SERIES);
    /// Series definitions and samples.
    pub const SERIES_AND_SAMPLES: RecordKinds =
        RecordKinds((1 << TYPE_SERIES) | (1 << super::encoding::TYPE_SAMPLES));

    fn wants(self, ty: u8) -> bool {
        ty <= TYPE_CHUNKS && self.0 & (1 << ty) != 0
    }
}

/// What [`WalTail::next_commit`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TailStep {
    /// A whole commit was read; the reader now stands at this position, after it.
    Commit(WalPosition),
    /// Nothing more is written yet.
    Idle,
}

/// Bytes read from the segment files per `pread`.
const READ_AHEAD: usize = 1 << 20;

/// Follows the WAL's segments from a position, one commit at a time.
pub struct WalTail {
    dir: PathBuf,
    pos: WalPosition,
    file: Option<File>,
    /// Bytes of the current segment starting at file offset `buf_at`.
    buf: Vec<u8>,
    buf_at: u64,
    skipped_segments: u64,
    skipped_bytes: u64,
}

impl WalTail {
    /// A reader that returns the commits starting at `from`.
    pub fn new(dir: &Path, from: WalPosition) -> WalTail {
        WalTail {
            dir: dir.to_path_buf(),
            pos: from,
            file: None,
            buf: Vec::new(),
            buf_at: from.offset,
            skipped_segments: 0,
            skipped_bytes: 0,
        }
    }

    /// Where the next commit starts.
    pub fn position(&self) -> WalPosition {
        self.pos
    }

    /// Segments that were deleted before this reader got to them (the WAL was truncated past it),
    /// and bytes of damaged segment tails jumped over. Both mean records were not read.
    pub fn skipped(&self) -> (u64, u64) {
        (self.skipped_segments, self.skipped_bytes)
    }

    /// Reads the next complete commit, appending its records of the wanted kinds to `out`.
    pub fn next_commit(
        &mut self,
        kinds: RecordKinds,
        out: &mut Vec<Record>,
    ) -> Result<TailStep, WalError> {
        loop {
            if self.file.is_none() && !self.open_current()? {
                return Ok(TailStep::Idle);
            }
            let before = out.len();
            match self.read_commit(kinds, out)? {
                Some(end) => {
                    self.pos.offset = end;
                    return Ok(TailStep::Commit(self.pos));
                }
                None => {
                    out.truncate(before);
                    // What was read may have been caught mid-write: read it afresh next time.
                    self.buf.clear();
                    self.buf_at = self.pos.offset;
                    // Move on only once the writer has: then this segment is final, and one more
                    // read sees everything it will ever hold.
                    if !segment_path(&self.dir, self.pos.segment + 1).exists() {
                        return Ok(TailStep::Idle);
                    }
                    if let Some(end) = self.read_commit(kinds, out)? {
                        self.pos.offset = end;
                        return Ok(TailStep::Commit(self.pos));
                    }
                    out.truncate(before);
                    let len = self.current_len()?;
                    if len > self.pos.offset {
                        self.skipped_bytes += len - self.pos.offset;
                        tracing::warn!(
                            segment = self.pos.segment,
                            offset = self.pos.offset,
                            bytes = len - self.pos.offset,
                            "WAL segment ends in an incomplete commit; continuing with the next"
                        );
                    }
                    self.pos = WalPosition {
                        segment: self.pos.segment + 1,
                        offset: 0,
                    };
                    self.file = None;
                }
            }
        }
    }

    fn buf_end(&self) -> u64 {
        self.buf_at + self.buf.len() as u64
    }

    fn current_len(&self) -> Result<u64, WalError> {
        let path = segment_path(&self.dir, self.pos.segment);
        match &self.file {
            Some(f) => Ok(f.metadata().map_err(io_err("stat", &path))?.len()),
            None => Ok(0),
        }
    }

    /// Opens the segment at the position, or the first later one if it was deleted. Returns
    /// whether a segment is open.
    fn open_current(&mut self) -> Result<bool, WalError> {
        let path = segment_path(&self.dir, self.pos.segment);
        match File::open(&path) {
            Ok(f) => {
                self.file = Some(f);
                self.buf.clear();
                self.buf_at = self.pos.offset;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let later = list_segments(&self.dir)?
                    .into_iter()
                    .find(|&n| n > self.pos.segment);
                match later {
                    Some(n) => {
                        tracing::warn!(
                            from = self.pos.segment,
                            to = n,
                            "WAL segments were removed before they were read"
                        );
                        self.skipped_segments += u64::from(n - self.pos.segment);
                        self.pos = WalPosition {
                            segment: n,
                            offset: 0,
                        };
                        self.open_current()
                    }
                    None => Ok(false),
                }
            }
            Err(e) => Err(io_err("opening", &path)(e)),
        }
    }

    /// Makes the bytes `[at, at + n)` of the current segment available in `buf`; returns whether
    /// the file holds them.
    fn fill(&mut self, at: u64, n: usize) -> Result<bool, WalError> {
        let end = at + n as u64;
        if at >= self.buf_at && end <= self.buf_end() {
            return Ok(true);
        }
        // Keep what is still ahead of `at`, read the rest.
        if at >= self.buf_at && at <= self.buf_end() {
            let keep = (at - self.buf_at) as usize;
            self.buf.drain(..keep);
        } else {
            self.buf.clear();
        }
        self.buf_at = at;
        let want = n.max(READ_AHEAD);
        let Some(file) = &self.file else {
            return Ok(false);
        };
        let path = segment_path(&self.dir, self.pos.segment);
        while self.buf.len() < want {
            let have = self.buf.len();
            self.buf.resize(want, 0);
            let got = loop {
                match file.read_at(&mut self.buf[have..], self.buf_at + have as u64) {
                    Ok(k) => break k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.buf.truncate(have);
                        return Err(io_err("reading", &path)(e));
                    }
                }
            };
            self.buf.truncate(have + got);
            if got == 0 {
                break;
            }
        }
        Ok(self.buf.len() >= n)
    }

    /// Reads one whole commit at the position; `None` if it is not completely there (or is
    /// damaged, which at the end of the newest segment looks the same as a write in progress).
    fn read_commit(
        &mut self,
        kinds: RecordKinds,
        out: &mut Vec<Record>,
    ) -> Result<Option<u64>, WalError> {
        let mut at = self.pos.offset;
        let commit_start = out.len();
        let mut undecodable = false;
        loop {
            if !self.fill(at, HEADER_LEN)? {
                return Ok(None);
            }
            let i = (at - self.buf_at) as usize;
            let h = &self.buf[i..i + HEADER_LEN];
            let ty = h[0];
            let len = u32::from_le_bytes([h[1], h[2], h[3], h[4]]) as usize;
            let crc = u32::from_le_bytes([h[5], h[6], h[7], h[8]]);
            let kind = ty & !FLAG_MORE;
            if !(TYPE_SERIES..=TYPE_MAX).contains(&kind) {
                return Ok(None);
            }
            if !self.fill(at, HEADER_LEN + len)? {
                return Ok(None);
            }
            let i = (at - self.buf_at) as usize;
            let payload = &self.buf[i + HEADER_LEN..i + HEADER_LEN + len];
            if frame_crc(ty, payload) != crc {
                return Ok(None);
            }
            if kinds.wants(encoding::record_kind(kind, payload)) {
                match encoding::decode(kind, payload) {
                    Ok(r) => out.push(r),
                    // Written whole (the CRC matches) yet not a record: skipped with its commit,
                    // as replay skips it, rather than waited on for ever.
                    Err(_) => undecodable = true,
                }
            }
            at += (HEADER_LEN + len) as u64;
            if ty & FLAG_MORE == 0 {
                if undecodable {
                    out.truncate(commit_start);
                }
                return Ok(Some(at));
            }
        }
    }
}

/// Where the WAL in `dir` starts: the newest checkpoint (if any) and the first segment after it.
fn start(dir: &Path) -> Result<(Option<u32>, u32), WalError> {
    let checkpoint = list_checkpoints(dir)?.done.last().copied();
    let first = list_segments(dir)?
        .into_iter()
        .find(|&n| checkpoint.is_none_or(|c| n > c))
        .unwrap_or_else(|| checkpoint.map_or(0, |c| c + 1));
    Ok((checkpoint, first))
}

/// Calls `f` with every series record written before `upto`: the checkpoint's, then the
/// segments' up to that position. A sender resuming at `upto` needs them to name the series of
/// the samples that follow.
pub fn series_before(
    dir: &Path,
    upto: WalPosition,
    mut f: impl FnMut(Record),
) -> Result<(), WalError> {
    if !dir.exists() {
        return Ok(());
    }
    let (checkpoint, first) = start(dir)?;
    if let Some(cp) = checkpoint {
        let cdir = checkpoint_path(dir, cp);
        for n in list_segments(&cdir)? {
            let path = segment_path(&cdir, n);
            let s = scan(&path, |ty, payload, _| {
                if encoding::record_kind(ty, payload) == TYPE_SERIES {
                    f(encoding::decode(ty, payload).map_err(|e| e.to_string())?);
                }
                Ok(())
            })?;
            if !s.is_clean() {
                return Err(WalError::Corrupt {
                    path,
                    segment: n,
                    offset: s.good_end,
                    reason: s.describe(),
                });
            }
        }
    }
    let mut tail = WalTail::new(
        dir,
        WalPosition {
            segment: first,
            offset: 0,
        },
    );
    let mut out = Vec::new();
    while tail.position() < upto {
        out.clear();
        match tail.next_commit(RecordKinds::SERIES, &mut out)? {
            TailStep::Commit(_) => out.drain(..).for_each(&mut f),
            TailStep::Idle => break,
        }
    }
    Ok(())
}
