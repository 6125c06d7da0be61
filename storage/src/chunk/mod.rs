//! Prometheus-compatible XOR ("Gorilla") chunks: the compressed form of one series' samples.
//!
//! The head keeps one open chunk per series and appends scraped samples to it with
//! [`XorAppender`]; full chunks are written out and later decoded with [`XorIterator`], which reads
//! borrowed bytes so that it can run straight over a memory-mapped file. The byte layout is
//! Prometheus's `EncXOR` chunk, bit for bit (see `storage/FORMAT-chunk.md`): a chunk written here
//! decodes in Prometheus and the other way round, and both write the same bytes for the same
//! samples.

mod bits;
mod xor;

#[cfg(test)]
mod shapes;
#[cfg(test)]
mod tests;

pub use xor::{XorAppender, XorIterator};

/// Samples per chunk after which the head cuts a new chunk, as in Prometheus: with a 15 s scrape
/// interval that is half an hour, and the compression gains little beyond it.
pub const MAX_SAMPLES_PER_CHUNK: u16 = 120;

/// Size at which the head cuts a chunk before it has [`MAX_SAMPLES_PER_CHUNK`] samples. Every
/// active series holds one open chunk in RAM, and noisy gauges reach 300+ bytes by 120 samples:
/// capping it bounds the head's RAM per series. Cut chunks live in head-chunk files and are
/// re-encoded into blocks, so the extra chunk starts cost only temporary disk.
pub const MAX_OPEN_CHUNK_BYTES: usize = 128;

/// Why a chunk could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// Fewer bytes than the 2-byte sample count header.
    #[error("chunk of {len} bytes is shorter than its 2-byte sample count header")]
    TooShort {
        /// Length of the input.
        len: usize,
    },
    /// The stream ended before the number of samples the header promises.
    #[error("chunk ends after {decoded} of the {total} samples its header promises")]
    Truncated {
        /// Samples decoded before the end.
        decoded: u16,
        /// Samples the header promises.
        total: u16,
    },
    /// A timestamp varint of the first two samples runs past 64 bits.
    #[error("timestamp varint of sample {sample} overflows 64 bits")]
    VarintOverflow {
        /// Index of the sample, from 0.
        sample: u16,
    },
    /// A value's leading-zero count and significant-bit width add up to more than 64 bits, which
    /// no encoder writes.
    #[error(
        "value of sample {sample} claims {leading} leading zeros and {significant} significant bits, over 64"
    )]
    BadValueWidth {
        /// Index of the sample, from 0.
        sample: u16,
        /// The leading-zero count read.
        leading: u8,
        /// The significant-bit width read.
        significant: u8,
    },
}
