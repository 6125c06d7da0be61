//! The neutral batch a sender fills, its encoding into a snappy-compressed 1.0 or 2.0 request
//! body, and the decoding of any request body back into it.
//!
//! The [`Encoder`] writes the protobuf wire format straight from the batch (no intermediate
//! message structs, no string copies) into buffers it keeps between calls; the derived messages
//! of [`crate::proto`] are only used to decode. Both produce and accept exactly the bytes the
//! `.proto` files describe; a test checks the encoder against prost's own encoding.
//!
//! Wire details that matter:
//! - labels go out in the order of [`Labels`], which is sorted by name; empty values do not
//!   exist in a [`Labels`], so none are sent (the spec treats an empty value as an absent label);
//! - sample values are written whenever their bits are not all zero, so `-0.0`, every NaN payload
//!   and the stale marker ([`edgeprom_model::STALE_NAN_BITS`]) travel bit-exactly;
//! - samples are written in the order given: the sender keeps each series' samples oldest first,
//!   as the spec requires;
//! - 2.0's symbol table starts with `""` and holds every string once.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use edgeprom_config::RemoteWriteMessage;
use edgeprom_model::{Labels, MetricType, Sample};
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};

use crate::proto::{v1, v2};

/// What one request carries: series with their samples and exemplars, and metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteBatch {
    /// The series, each with at least one sample in practice.
    pub series: Vec<BatchSeries>,
    /// Metric family metadata. 1.0 sends it as its own list (a batch may hold only metadata);
    /// 2.0 has no such list: the encoder attaches an entry to every series of the family that has
    /// no [`BatchSeries::metadata`] of its own, and drops the rest.
    pub metadata: Vec<FamilyMetadata>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> WriteBatch {
        WriteBatch::default()
    }

    /// Empties the batch, keeping its allocations.
    pub fn clear(&mut self) {
        self.series.clear();
        self.metadata.clear();
    }

    /// Number of samples over all series.
    pub fn sample_count(&self) -> usize {
        self.series.iter().map(|s| s.samples.len()).sum()
    }

    /// Number of exemplars over all series.
    pub fn exemplar_count(&self) -> usize {
        self.series.iter().map(|s| s.exemplars.len()).sum()
    }
}

/// One series of a batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchSeries {
    /// The series' labels, external labels included (sorted, no empty values by construction).
    /// Unused when [`BatchSeries::wire_labels`] is set.
    pub labels: Labels,
    /// The same labels already in wire form. The sender keeps every series' labels this way (a
    /// third of the memory of a [`Labels`], shared by reference count, and copied into a 1.0
    /// request as they are); decoding never sets it.
    pub wire_labels: Option<WireLabels>,
    /// Samples, oldest first. Stale markers are ordinary samples with the stale NaN value.
    pub samples: Vec<Sample>,
    /// Exemplars (sent only when the queue's `send_exemplars` is on: the sender decides).
    pub exemplars: Vec<BatchExemplar>,
    /// 2.0 only: the series' metadata. Ignored by the 1.0 encoding, which sends
    /// [`WriteBatch::metadata`] instead.
    pub metadata: Option<SeriesMetadata>,
}

/// A label set as the repeated `Label` messages of a 1.0 `TimeSeries` (field 1: `name` = 1,
/// `value` = 2), behind a reference count. Built from a sorted [`Labels`], so it stays sorted.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct WireLabels(std::sync::Arc<[u8]>);

impl WireLabels {
    /// Encodes `labels`.
    pub fn new(labels: &Labels) -> WireLabels {
        let mut buf = Vec::with_capacity(v1_labels_len(labels));
        put_v1_labels(1, labels, &mut buf);
        WireLabels(buf.into())
    }

    /// The `(name, value)` pairs in order.
    pub fn pairs(&self) -> WirePairs<'_> {
        WirePairs(&self.0)
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.pairs().count()
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `__name__` value, or `""`.
    pub fn metric_name(&self) -> &str {
        self.pairs()
            .find(|(n, _)| *n == "__name__")
            .map_or("", |(_, v)| v)
    }

    /// The wire bytes (what a 1.0 `TimeSeries` holds for its labels).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Back to a [`Labels`].
    pub fn to_labels(&self) -> Labels {
        Labels::from_pairs(self.pairs())
    }
}

impl std::fmt::Debug for WireLabels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.pairs()).finish()
    }
}

/// Iterator over the pairs of a [`WireLabels`].
pub struct WirePairs<'a>(&'a [u8]);

fn read_varint(b: &mut &[u8]) -> Option<u64> {
    let mut x = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = b.split_first()?;
        *b = rest;
        x |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(x);
        }
    }
    None
}

impl<'a> Iterator for WirePairs<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        if self.0.is_empty() {
            return None;
        }
        // One `Label` message: key, length, then its string fields in any order (an empty one
        // may be left out, as protobuf allows).
        read_varint(&mut self.0)?;
        let len = usize::try_from(read_varint(&mut self.0)?).ok()?;
        let (mut msg, rest) = self.0.split_at_checked(len)?;
        self.0 = rest;
        let (mut name, mut value) = ("", "");
        while !msg.is_empty() {
            let key = read_varint(&mut msg)?;
            let n = usize::try_from(read_varint(&mut msg)?).ok()?;
            let (bytes, rest) = msg.split_at_checked(n)?;
            msg = rest;
            let text = std::str::from_utf8(bytes).ok()?;
            match key >> 3 {
                1 => name = text,
                2 => value = text,
                _ => {}
            }
        }
        Some((name, value))
    }
}

/// An exemplar: its own labels (e.g. `trace_id`), value and timestamp.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchExemplar {
    /// The exemplar's labels.
    pub labels: Labels,
    /// The observed value.
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
}

/// A series' metadata in 2.0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeriesMetadata {
    /// The type.
    pub kind: MetricType,
    /// Help text; empty = none.
    pub help: String,
    /// Unit; empty = none.
    pub unit: String,
}

/// A metric family's metadata (1.0's `MetricMetadata`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FamilyMetadata {
    /// The family name (`http_requests_total`'s family is `http_requests_total` in OpenMetrics
    /// naming as scraped, `http_requests` for an OpenMetrics counter).
    pub family: String,
    /// The type.
    pub kind: MetricType,
    /// Help text.
    pub help: String,
    /// Unit.
    pub unit: String,
}

/// The batch could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The protobuf body exceeds what snappy's block format can hold (about 4 GiB).
    #[error("request too large to compress: {0}")]
    Compress(#[from] snap::Error),
}

/// Encodes batches into request bodies, reusing its buffers from call to call. One per sender
/// shard; not shared between threads.
#[derive(Default)]
pub struct Encoder {
    pb: Vec<u8>,
    out: Vec<u8>,
    snappy: SnappyEncoder,
    symbols: Symbols,
    refs: Vec<u32>,
}

/// `snap::raw::Encoder` holds a reusable hash table; it has no `Default`.
struct SnappyEncoder(snap::raw::Encoder);

impl Default for SnappyEncoder {
    fn default() -> SnappyEncoder {
        SnappyEncoder(snap::raw::Encoder::new())
    }
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder").finish_non_exhaustive()
    }
}

impl Encoder {
    /// A new encoder with empty buffers.
    pub fn new() -> Encoder {
        Encoder::default()
    }

    /// The snappy-compressed request body for `batch` as `message`; valid until the next call.
    pub fn encode(
        &mut self,
        batch: &WriteBatch,
        message: RemoteWriteMessage,
    ) -> Result<&[u8], EncodeError> {
        self.encode_protobuf(batch, message);
        let max = snap::raw::max_compress_len(self.pb.len());
        if max == 0 && !self.pb.is_empty() {
            return Err(EncodeError::Compress(snap::Error::TooBig {
                given: self.pb.len() as u64,
                max: u32::MAX as u64,
            }));
        }
        self.out.resize(max, 0);
        let n = self.snappy.0.compress(&self.pb, &mut self.out)?;
        self.out.truncate(n);
        Ok(&self.out)
    }

    /// The uncompressed protobuf message for `batch`; valid until the next call.
    pub fn encode_protobuf(&mut self, batch: &WriteBatch, message: RemoteWriteMessage) -> &[u8] {
        self.pb.clear();
        match message {
            RemoteWriteMessage::V1 => encode_v1(batch, &mut self.pb),
            RemoteWriteMessage::V2 => {
                encode_v2(batch, &mut self.pb, &mut self.symbols, &mut self.refs)
            }
        }
        &self.pb
    }
}

// ---- protobuf writing helpers (all tags used here are below 16: one-byte keys) ----

fn len_delimited_len(inner: usize) -> usize {
    1 + encoded_len_varint(inner as u64) + inner
}

fn string_len(s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        len_delimited_len(s.len())
    }
}

fn double_len(v: f64) -> usize {
    if v.to_bits() == 0 { 0 } else { 9 }
}

fn int64_len(v: i64) -> usize {
    if v == 0 {
        0
    } else {
        1 + encoded_len_varint(v as u64)
    }
}

fn uint_len(v: u64) -> usize {
    if v == 0 { 0 } else { 1 + encoded_len_varint(v) }
}

fn put_string(tag: u32, s: &str, buf: &mut Vec<u8>) {
    if !s.is_empty() {
        put_bytes_always(tag, s.as_bytes(), buf);
    }
}

fn put_bytes_always(tag: u32, b: &[u8], buf: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(b.len() as u64, buf);
    buf.extend_from_slice(b);
}

fn put_double(tag: u32, v: f64, buf: &mut Vec<u8>) {
    if v.to_bits() != 0 {
        encode_key(tag, WireType::SixtyFourBit, buf);
        buf.extend_from_slice(&v.to_bits().to_le_bytes());
    }
}

fn put_int64(tag: u32, v: i64, buf: &mut Vec<u8>) {
    if v != 0 {
        encode_key(tag, WireType::Varint, buf);
        encode_varint(v as u64, buf);
    }
}

fn put_uint(tag: u32, v: u64, buf: &mut Vec<u8>) {
    if v != 0 {
        encode_key(tag, WireType::Varint, buf);
        encode_varint(v, buf);
    }
}

fn put_message_header(tag: u32, len: usize, buf: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(len as u64, buf);
}

fn sample_len(s: &Sample) -> usize {
    double_len(s.v) + int64_len(s.t)
}

fn put_sample(tag: u32, s: &Sample, buf: &mut Vec<u8>) {
    put_message_header(tag, sample_len(s), buf);
    put_double(1, s.v, buf);
    put_int64(2, s.t, buf);
}

fn type_number(kind: MetricType) -> u64 {
    match kind {
        MetricType::Unknown => 0,
        MetricType::Counter => 1,
        MetricType::Gauge => 2,
        MetricType::Histogram => 3,
        MetricType::GaugeHistogram => 4,
        MetricType::Summary => 5,
        MetricType::Info => 6,
        MetricType::StateSet => 7,
    }
}

fn type_of(number: i32) -> MetricType {
    match number {
        1 => MetricType::Counter,
        2 => MetricType::Gauge,
        3 => MetricType::Histogram,
        4 => MetricType::GaugeHistogram,
        5 => MetricType::Summary,
        6 => MetricType::Info,
        7 => MetricType::StateSet,
        _ => MetricType::Unknown,
    }
}

// ---- 1.0 ----

fn v1_label_len(name: &str, value: &str) -> usize {
    string_len(name) + string_len(value)
}

fn v1_labels_len(labels: &Labels) -> usize {
    labels
        .iter()
        .map(|l| len_delimited_len(v1_label_len(&l.name, &l.value)))
        .sum()
}

fn put_v1_labels(tag: u32, labels: &Labels, buf: &mut Vec<u8>) {
    for l in labels {
        put_message_header(tag, v1_label_len(&l.name, &l.value), buf);
        put_string(1, &l.name, buf);
        put_string(2, &l.value, buf);
    }
}

fn v1_exemplar_len(e: &BatchExemplar) -> usize {
    v1_labels_len(&e.labels) + double_len(e.value) + int64_len(e.timestamp)
}

fn v1_series_labels_len(s: &BatchSeries) -> usize {
    match &s.wire_labels {
        Some(w) => w.as_bytes().len(),
        None => v1_labels_len(&s.labels),
    }
}

fn put_v1_series_labels(s: &BatchSeries, buf: &mut Vec<u8>) {
    match &s.wire_labels {
        Some(w) => buf.extend_from_slice(w.as_bytes()),
        None => put_v1_labels(1, &s.labels, buf),
    }
}

fn v1_series_len(s: &BatchSeries) -> usize {
    v1_series_labels_len(s)
        + s.samples
            .iter()
            .map(|x| len_delimited_len(sample_len(x)))
            .sum::<usize>()
        + s.exemplars
            .iter()
            .map(|e| len_delimited_len(v1_exemplar_len(e)))
            .sum::<usize>()
}

fn v1_metadata_len(m: &FamilyMetadata) -> usize {
    uint_len(type_number(m.kind))
        + string_len(&m.family)
        + string_len(&m.help)
        + string_len(&m.unit)
}

fn encode_v1(batch: &WriteBatch, buf: &mut Vec<u8>) {
    for s in &batch.series {
        put_message_header(1, v1_series_len(s), buf);
        put_v1_series_labels(s, buf);
        for x in &s.samples {
            put_sample(2, x, buf);
        }
        for e in &s.exemplars {
            put_message_header(3, v1_exemplar_len(e), buf);
            put_v1_labels(1, &e.labels, buf);
            put_double(2, e.value, buf);
            put_int64(3, e.timestamp, buf);
        }
    }
    for m in &batch.metadata {
        put_message_header(3, v1_metadata_len(m), buf);
        put_uint(1, type_number(m.kind), buf);
        put_string(2, &m.family, buf);
        put_string(4, &m.help, buf);
        put_string(5, &m.unit, buf);
    }
}

// ---- 2.0 ----

/// 2.0's symbol table: strings stored once in one buffer, looked up by an FNV-1a hash with
/// chaining. Cleared, not freed, between requests.
#[derive(Default)]
struct Symbols {
    text: String,
    spans: Vec<(u32, u32)>,
    heads: HashMap<u64, u32, BuildHasherDefault<IdentityHasher>>,
    next: Vec<u32>,
}

const NO_SYMBOL: u32 = u32::MAX;

impl Symbols {
    fn clear(&mut self) {
        self.text.clear();
        self.spans.clear();
        self.heads.clear();
        self.next.clear();
    }

    fn get(&self, i: u32) -> &str {
        let (start, end) = self.spans[i as usize];
        &self.text[start as usize..end as usize]
    }

    fn intern(&mut self, s: &str) -> u32 {
        let h = fnv1a(s.as_bytes());
        let head = self.heads.get(&h).copied().unwrap_or(NO_SYMBOL);
        let mut cur = head;
        while cur != NO_SYMBOL {
            if self.get(cur) == s {
                return cur;
            }
            cur = self.next[cur as usize];
        }
        let id = self.spans.len() as u32;
        let start = self.text.len() as u32;
        self.text.push_str(s);
        self.spans.push((start, self.text.len() as u32));
        self.next.push(head);
        self.heads.insert(h, id);
        id
    }

    fn len(&self) -> usize {
        self.spans.len()
    }
}

fn fnv1a(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &x in b {
        h ^= u64::from(x);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The keys are already hashes.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

fn packed_len(refs: &[u32]) -> usize {
    refs.iter().map(|&r| encoded_len_varint(u64::from(r))).sum()
}

fn packed_field_len(refs: &[u32]) -> usize {
    if refs.is_empty() {
        0
    } else {
        len_delimited_len(packed_len(refs))
    }
}

fn put_packed(tag: u32, refs: &[u32], buf: &mut Vec<u8>) {
    if refs.is_empty() {
        return;
    }
    put_message_header(tag, packed_len(refs), buf);
    for &r in refs {
        encode_varint(u64::from(r), buf);
    }
}

/// The metadata a series carries in 2.0: its own, else its family's from the batch list.
fn v2_metadata_for<'a>(
    s: &'a BatchSeries,
    families: &HashMap<&str, &'a FamilyMetadata>,
) -> Option<(MetricType, &'a str, &'a str)> {
    if let Some(m) = &s.metadata {
        return Some((m.kind, &m.help, &m.unit));
    }
    if families.is_empty() {
        return None;
    }
    let name = match &s.wire_labels {
        Some(w) => w.metric_name(),
        None => s.labels.metric_name(),
    };
    let family = families.get(name).or_else(|| {
        const SUFFIXES: [&str; 7] = [
            "_total", "_bucket", "_count", "_sum", "_created", "_gcount", "_gsum",
        ];
        SUFFIXES
            .iter()
            .find_map(|suf| name.strip_suffix(suf).and_then(|n| families.get(n)))
    })?;
    Some((family.kind, &family.help, &family.unit))
}

fn encode_v2(batch: &WriteBatch, buf: &mut Vec<u8>, symbols: &mut Symbols, refs: &mut Vec<u32>) {
    symbols.clear();
    refs.clear();
    symbols.intern("");
    let families: HashMap<&str, &FamilyMetadata> = batch
        .metadata
        .iter()
        .map(|m| (m.family.as_str(), m))
        .collect();

    // Pass 1: intern every string, in write order, into `refs`.
    for s in &batch.series {
        match &s.wire_labels {
            Some(w) => {
                for (name, value) in w.pairs() {
                    refs.push(symbols.intern(name));
                    refs.push(symbols.intern(value));
                }
            }
            None => {
                for l in &s.labels {
                    refs.push(symbols.intern(&l.name));
                    refs.push(symbols.intern(&l.value));
                }
            }
        }
        for e in &s.exemplars {
            for l in &e.labels {
                refs.push(symbols.intern(&l.name));
                refs.push(symbols.intern(&l.value));
            }
        }
        if let Some((_, help, unit)) = v2_metadata_for(s, &families) {
            refs.push(symbols.intern(help));
            refs.push(symbols.intern(unit));
        }
    }

    for i in 0..symbols.len() {
        put_bytes_always(4, symbols.get(i as u32).as_bytes(), buf);
    }

    // Pass 2: write the series, consuming `refs` in the same order.
    let mut at = 0;
    for s in &batch.series {
        let n = s
            .wire_labels
            .as_ref()
            .map_or(s.labels.len(), WireLabels::len);
        let labels = &refs[at..at + 2 * n];
        at += labels.len();
        let ex_start = at;
        for e in &s.exemplars {
            at += 2 * e.labels.len();
        }
        let meta = v2_metadata_for(s, &families).map(|(kind, _, _)| {
            let m = (type_number(kind), refs[at], refs[at + 1]);
            at += 2;
            m
        });
        let meta_len = |(t, h, u): (u64, u32, u32)| -> usize {
            uint_len(t) + uint_len(u64::from(h)) + uint_len(u64::from(u))
        };

        let mut ex_len = 0;
        let mut cursor = ex_start;
        for e in &s.exemplars {
            let n = 2 * e.labels.len();
            let inner = packed_field_len(&refs[cursor..cursor + n])
                + double_len(e.value)
                + int64_len(e.timestamp);
            ex_len += len_delimited_len(inner);
            cursor += n;
        }
        let series_len = packed_field_len(labels)
            + s.samples
                .iter()
                .map(|x| len_delimited_len(sample_len(x)))
                .sum::<usize>()
            + ex_len
            + meta.map_or(0, |m| len_delimited_len(meta_len(m)));

        put_message_header(5, series_len, buf);
        put_packed(1, labels, buf);
        for x in &s.samples {
            put_sample(2, x, buf);
        }
        let mut cursor = ex_start;
        for e in &s.exemplars {
            let n = 2 * e.labels.len();
            let lr = &refs[cursor..cursor + n];
            cursor += n;
            let inner = packed_field_len(lr) + double_len(e.value) + int64_len(e.timestamp);
            put_message_header(4, inner, buf);
            put_packed(1, lr, buf);
            put_double(2, e.value, buf);
            put_int64(3, e.timestamp, buf);
        }
        if let Some(m) = meta {
            put_message_header(5, meta_len(m), buf);
            put_uint(1, m.0, buf);
            put_uint(3, u64::from(m.1), buf);
            put_uint(4, u64::from(m.2), buf);
        }
    }
}

// ---- decoding ----

/// A request body could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The body is not valid snappy block data.
    #[error("snappy: {0}")]
    Snappy(String),
    /// The decompressed body would exceed the limit.
    #[error("decompressed body of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Decompressed size announced by the snappy header.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The body is not the protobuf message it was announced as.
    #[error("decoding {message}: {error}")]
    Protobuf {
        /// Which message was expected.
        message: RemoteWriteMessage,
        /// prost's description.
        error: String,
    },
    /// A 2.0 reference points outside the symbol table, or a reference list has odd length.
    #[error("{0}")]
    Symbols(String),
}

/// A decoded request: the valid series, plus what could not be turned into a series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decoded {
    /// The batch: series with valid label sets and their samples, and (1.0) metadata.
    pub batch: WriteBatch,
    /// Series refused for their labels: the labels as received, the reason, and how many samples
    /// (float and histogram) they carried.
    pub invalid_series: Vec<InvalidSeries>,
    /// Native histogram samples received; edgeprom does not store them. A series that carries
    /// only histogram samples is not in the batch.
    pub histograms: usize,
}

/// A series whose label set cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSeries {
    /// The labels as received, `{a="b", ...}`.
    pub labels: String,
    /// Why: no metric name, an empty or repeated label name.
    pub reason: &'static str,
    /// Samples (float and histogram) the series carried.
    pub samples: usize,
}

/// Decompresses and decodes a request body of the given message type; at most `limit` bytes of
/// decompressed protobuf are accepted (checked against the snappy header before allocating).
pub fn decode(
    body: &[u8],
    message: RemoteWriteMessage,
    limit: usize,
) -> Result<Decoded, DecodeError> {
    let size = snap::raw::decompress_len(body).map_err(|e| DecodeError::Snappy(e.to_string()))?;
    if size > limit {
        return Err(DecodeError::TooLarge { size, limit });
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| DecodeError::Snappy(e.to_string()))?;
    decode_protobuf(&raw, message)
}

/// Decodes an uncompressed protobuf message.
pub fn decode_protobuf(raw: &[u8], message: RemoteWriteMessage) -> Result<Decoded, DecodeError> {
    let proto_err = |e: prost::DecodeError| DecodeError::Protobuf {
        message,
        error: e.to_string(),
    };
    match message {
        RemoteWriteMessage::V1 => from_v1(v1::WriteRequest::decode(raw).map_err(proto_err)?),
        RemoteWriteMessage::V2 => from_v2(v2::Request::decode(raw).map_err(proto_err)?),
    }
}

/// Checks the received pairs and builds the label set: Prometheus refuses an empty or repeated
/// name and a missing metric name. Empty values are dropped (an absent label).
fn checked_labels<'a>(
    pairs: impl Iterator<Item = (&'a str, &'a str)> + Clone,
    need_name: bool,
) -> Result<Labels, (String, &'static str)> {
    let text = || {
        let parts: Vec<String> = pairs.clone().map(|(n, v)| format!("{n}={v:?}")).collect();
        format!("{{{}}}", parts.join(", "))
    };
    let mut names: Vec<&str> = pairs.clone().map(|(n, _)| n).collect();
    if names.iter().any(|n| n.is_empty()) {
        return Err((text(), "empty label name"));
    }
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err((text(), "duplicate label name"));
    }
    let labels = Labels::from_pairs(pairs.clone());
    if need_name && labels.metric_name().is_empty() {
        return Err((text(), "no metric name"));
    }
    Ok(labels)
}

fn samples(it: impl Iterator<Item = (i64, f64)>) -> Vec<Sample> {
    it.map(|(t, v)| Sample { t, v }).collect()
}

fn from_v1(req: v1::WriteRequest) -> Result<Decoded, DecodeError> {
    let mut out = Decoded::default();
    for ts in &req.timeseries {
        out.histograms += ts.histograms.len();
        if ts.samples.is_empty() && !ts.histograms.is_empty() {
            continue;
        }
        let pairs = ts
            .labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()));
        let labels = match checked_labels(pairs, true) {
            Ok(l) => l,
            Err((labels, reason)) => {
                out.invalid_series.push(InvalidSeries {
                    labels,
                    reason,
                    samples: ts.samples.len() + ts.histograms.len(),
                });
                continue;
            }
        };
        let mut exemplars = Vec::with_capacity(ts.exemplars.len());
        for e in &ts.exemplars {
            let pairs = e.labels.iter().map(|l| (l.name.as_str(), l.value.as_str()));
            // An exemplar with bad labels is dropped, as Prometheus drops failing exemplars.
            if let Ok(labels) = checked_labels(pairs, false) {
                exemplars.push(BatchExemplar {
                    labels,
                    value: e.value,
                    timestamp: e.timestamp,
                });
            }
        }
        out.batch.series.push(BatchSeries {
            labels,
            wire_labels: None,
            samples: samples(ts.samples.iter().map(|s| (s.timestamp, s.value))),
            exemplars,
            metadata: None,
        });
    }
    out.batch.metadata = req
        .metadata
        .into_iter()
        .map(|m| FamilyMetadata {
            family: m.metric_family_name,
            kind: type_of(m.r#type),
            help: m.help,
            unit: m.unit,
        })
        .collect();
    Ok(out)
}

fn symbol_pairs<'a>(
    refs: &[u32],
    symbols: &'a [String],
) -> Result<Vec<(&'a str, &'a str)>, DecodeError> {
    if !refs.len().is_multiple_of(2) {
        return Err(DecodeError::Symbols(format!(
            "labels_refs has odd length {}",
            refs.len()
        )));
    }
    refs.chunks_exact(2)
        .map(|p| Ok((symbol(symbols, p[0])?, symbol(symbols, p[1])?)))
        .collect()
}

fn symbol(symbols: &[String], r: u32) -> Result<&str, DecodeError> {
    symbols.get(r as usize).map(String::as_str).ok_or_else(|| {
        DecodeError::Symbols(format!(
            "symbol reference {r} out of range (symbols has {} entries)",
            symbols.len()
        ))
    })
}

fn from_v2(req: v2::Request) -> Result<Decoded, DecodeError> {
    let mut out = Decoded::default();
    let symbols = &req.symbols;
    for ts in &req.timeseries {
        out.histograms += ts.histograms.len();
        if ts.samples.is_empty() && !ts.histograms.is_empty() {
            continue;
        }
        let pairs = symbol_pairs(&ts.labels_refs, symbols)?;
        let labels = match checked_labels(pairs.iter().copied(), true) {
            Ok(l) => l,
            Err((labels, reason)) => {
                out.invalid_series.push(InvalidSeries {
                    labels,
                    reason,
                    samples: ts.samples.len() + ts.histograms.len(),
                });
                continue;
            }
        };
        let mut exemplars = Vec::with_capacity(ts.exemplars.len());
        for e in &ts.exemplars {
            let pairs = symbol_pairs(&e.labels_refs, symbols)?;
            if let Ok(labels) = checked_labels(pairs.iter().copied(), false) {
                exemplars.push(BatchExemplar {
                    labels,
                    value: e.value,
                    timestamp: e.timestamp,
                });
            }
        }
        let metadata = match &ts.metadata {
            None => None,
            Some(m) => Some(SeriesMetadata {
                kind: type_of(m.r#type),
                help: symbol(symbols, m.help_ref)?.to_string(),
                unit: symbol(symbols, m.unit_ref)?.to_string(),
            }),
        };
        out.batch.series.push(BatchSeries {
            labels,
            wire_labels: None,
            samples: samples(ts.samples.iter().map(|s| (s.timestamp, s.value))),
            exemplars,
            metadata,
        });
    }
    Ok(out)
}
