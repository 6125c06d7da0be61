//! The block's `index` file: symbols, series entries (labels and where their sample streams are)
//! and postings per label pair. Written in one piece from memory; read in place from the memory map, so an open
//! block holds only the handful of section offsets in [`IndexHeader`]. Layout in
//! `storage/FORMAT-block.md`, section "index".

use std::collections::BTreeMap;

use edgeprom_model::Labels;

use super::codec::{DecodeError, Reader, put_uvarint, put_varint};

pub(crate) const INDEX_MAGIC: u32 = 0x4550_4958; // "EPIX"
pub(crate) const SAMPLES_MAGIC: u32 = 0x4550_5344; // "EPSD"
pub(crate) const FORMAT_VERSION: u8 = 1;
/// Magic, version, 3 reserved bytes.
pub(crate) const FILE_HEADER_LEN: usize = 8;
/// File header, meta.json CRC, three section offsets.
const INDEX_HEADER_LEN: usize = FILE_HEADER_LEN + 4 + 3 * 8;
/// Name entries and value entries are three u32 each.
const TABLE_ENTRY_LEN: usize = 12;

/// Where a series' samples are and what range they cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SeriesRef {
    /// Offset and length of the timestamp stream in the samples file.
    pub(crate) ts: (u64, u64),
    /// Offset and length of the value stream in the samples file.
    pub(crate) values: (u64, u64),
    pub(crate) mint: i64,
    pub(crate) maxt: i64,
    pub(crate) samples: u64,
}

fn put_u32(out: &mut Vec<u8>, x: u32) {
    out.extend_from_slice(&x.to_le_bytes());
}

fn set_u32(out: &mut [u8], at: usize, x: u32) {
    out[at..at + 4].copy_from_slice(&x.to_le_bytes());
}

fn off32(x: usize) -> Result<u32, String> {
    u32::try_from(x).map_err(|_| "index larger than 4 GiB".to_string())
}

/// Builds the whole index file (CRC included) for series in label order.
pub(crate) fn build_index(
    series: &[(Labels, SeriesRef)],
    meta_crc: u32,
) -> Result<Vec<u8>, String> {
    // Symbols sorted by string: then id order is string order, which lets lookups binary-search
    // by id and keeps value tables sorted by value for free.
    let mut syms: BTreeMap<&str, u32> = BTreeMap::new();
    for (labels, _) in series {
        for l in labels.iter() {
            syms.insert(&l.name, 0);
            syms.insert(&l.value, 0);
        }
    }
    for (i, id) in syms.values_mut().enumerate() {
        *id = i as u32;
    }

    let mut out = Vec::with_capacity(INDEX_HEADER_LEN + series.len() * 64);
    put_u32(&mut out, INDEX_MAGIC);
    out.extend_from_slice(&[FORMAT_VERSION, 0, 0, 0]);
    put_u32(&mut out, meta_crc);
    let toc = out.len();
    out.resize(INDEX_HEADER_LEN, 0);

    // Symbols.
    let symbols_at = out.len();
    put_u32(&mut out, off32(syms.len())?);
    let table = out.len();
    out.resize(table + 4 * syms.len(), 0);
    for (i, s) in syms.keys().enumerate() {
        let here = off32(out.len())?;
        set_u32(&mut out, table + 4 * i, here);
        put_uvarint(&mut out, s.len() as u64);
        out.extend_from_slice(s.as_bytes());
    }

    // Series.
    let series_at = out.len();
    put_u32(&mut out, off32(series.len())?);
    let table = out.len();
    out.resize(table + 4 * series.len(), 0);
    let mut postings: BTreeMap<u32, BTreeMap<u32, Vec<u32>>> = BTreeMap::new();
    for (i, (labels, r)) in series.iter().enumerate() {
        let here = off32(out.len())?;
        set_u32(&mut out, table + 4 * i, here);
        put_uvarint(&mut out, labels.len() as u64);
        for l in labels.iter() {
            let (n, v) = (syms[l.name.as_str()], syms[l.value.as_str()]);
            put_uvarint(&mut out, u64::from(n));
            put_uvarint(&mut out, u64::from(v));
            postings
                .entry(n)
                .or_default()
                .entry(v)
                .or_default()
                .push(i as u32);
        }
        put_uvarint(&mut out, r.ts.0);
        put_uvarint(&mut out, r.ts.1);
        put_uvarint(&mut out, r.values.0);
        put_uvarint(&mut out, r.values.1);
        put_varint(&mut out, r.mint);
        put_uvarint(&mut out, r.maxt.wrapping_sub(r.mint) as u64);
        put_uvarint(&mut out, r.samples);
    }

    // Label names, then per name its value table, then the postings lists.
    let labels_at = out.len();
    put_u32(&mut out, off32(postings.len())?);
    let names_table = out.len();
    out.resize(names_table + TABLE_ENTRY_LEN * postings.len(), 0);
    for (ni, (&name, values)) in postings.iter().enumerate() {
        let values_table = out.len();
        let e = names_table + TABLE_ENTRY_LEN * ni;
        set_u32(&mut out, e, name);
        set_u32(&mut out, e + 4, off32(values.len())?);
        set_u32(&mut out, e + 8, off32(values_table)?);
        out.resize(values_table + TABLE_ENTRY_LEN * values.len(), 0);
        for (vi, (&value, list)) in values.iter().enumerate() {
            let here = off32(out.len())?;
            let e = values_table + TABLE_ENTRY_LEN * vi;
            set_u32(&mut out, e, value);
            set_u32(&mut out, e + 4, here);
            set_u32(&mut out, e + 8, off32(list.len())?);
            let mut prev = 0u32;
            for &id in list {
                put_uvarint(&mut out, u64::from(id - prev));
                prev = id;
            }
        }
    }

    for (i, at) in [symbols_at, series_at, labels_at].into_iter().enumerate() {
        out[toc + 8 * i..toc + 8 * i + 8].copy_from_slice(&(at as u64).to_le_bytes());
    }
    let crc = crc32c::crc32c(&out);
    put_u32(&mut out, crc);
    Ok(out)
}

/// Section positions read from the index header and checked to lie inside the file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IndexHeader {
    pub(crate) meta_crc: u32,
    pub(crate) num_symbols: usize,
    symbols_table: usize,
    pub(crate) num_series: usize,
    series_table: usize,
    num_names: usize,
    names_table: usize,
}

/// Checks `count` fixed entries of `width` bytes from `at` lie before `end`.
fn table_fits(at: usize, count: usize, width: usize, end: usize) -> Result<(), DecodeError> {
    count
        .checked_mul(width)
        .and_then(|n| n.checked_add(at))
        .filter(|&e| e <= end)
        .map(|_| ())
        .ok_or(DecodeError("table runs past the end of the file"))
}

impl IndexHeader {
    /// Parses the header of an index whose CRC has been verified; `data` excludes the CRC.
    pub(crate) fn parse(data: &[u8]) -> Result<IndexHeader, DecodeError> {
        let mut r = Reader::new(data);
        if r.u32()? != INDEX_MAGIC {
            return Err(DecodeError("bad magic number"));
        }
        if r.u8()? != FORMAT_VERSION {
            return Err(DecodeError("unsupported format version"));
        }
        r.bytes(3)?;
        let meta_crc = r.u32()?;
        let mut at = [0usize; 3];
        for a in &mut at {
            *a = usize::try_from(r.u64()?).map_err(|_| DecodeError("section offset too large"))?;
        }
        let count_at = |pos: usize| -> Result<(usize, usize), DecodeError> {
            let mut r = Reader::at(data, pos)?;
            Ok((r.u32()? as usize, r.pos()))
        };
        let (num_symbols, symbols_table) = count_at(at[0])?;
        table_fits(symbols_table, num_symbols, 4, data.len())?;
        let (num_series, series_table) = count_at(at[1])?;
        table_fits(series_table, num_series, 4, data.len())?;
        let (num_names, names_table) = count_at(at[2])?;
        table_fits(names_table, num_names, TABLE_ENTRY_LEN, data.len())?;
        Ok(IndexHeader {
            meta_crc,
            num_symbols,
            symbols_table,
            num_series,
            series_table,
            num_names,
            names_table,
        })
    }
}

/// Read access to a verified index held in a memory map.
pub(crate) struct IndexReader<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) h: &'a IndexHeader,
}

fn u32_at(data: &[u8], at: usize) -> Result<u32, DecodeError> {
    Reader::at(data, at)?.u32()
}

/// A label name's entry in the name table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NameEntry {
    pub(crate) name: u32,
    num_values: usize,
    values_table: usize,
}

impl<'a> IndexReader<'a> {
    pub(crate) fn symbol(&self, id: u32) -> Result<&'a str, DecodeError> {
        if id as usize >= self.h.num_symbols {
            return Err(DecodeError("symbol id out of range"));
        }
        let at = u32_at(self.data, self.h.symbols_table + 4 * id as usize)? as usize;
        let mut r = Reader::at(self.data, at)?;
        let len = r.len(self.data.len())?;
        std::str::from_utf8(r.bytes(len)?).map_err(|_| DecodeError("symbol is not UTF-8"))
    }

    /// Binary search over `count` items whose key is read by `key`.
    fn search(
        count: usize,
        target: &str,
        key: impl Fn(usize) -> Result<&'a str, DecodeError>,
    ) -> Result<Option<usize>, DecodeError> {
        let (mut lo, mut hi) = (0usize, count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match key(mid)?.cmp(target) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(Some(mid)),
            }
        }
        Ok(None)
    }

    pub(crate) fn names(&self) -> Result<Vec<NameEntry>, DecodeError> {
        (0..self.h.num_names).map(|i| self.name_entry(i)).collect()
    }

    fn name_entry(&self, i: usize) -> Result<NameEntry, DecodeError> {
        let mut r = Reader::at(self.data, self.h.names_table + TABLE_ENTRY_LEN * i)?;
        let name = r.u32()?;
        let num_values = r.u32()? as usize;
        let values_table = r.u32()? as usize;
        table_fits(values_table, num_values, TABLE_ENTRY_LEN, self.data.len())?;
        Ok(NameEntry {
            name,
            num_values,
            values_table,
        })
    }

    pub(crate) fn find_name(&self, name: &str) -> Result<Option<NameEntry>, DecodeError> {
        let found = Self::search(self.h.num_names, name, |i| {
            self.symbol(u32_at(self.data, self.h.names_table + TABLE_ENTRY_LEN * i)?)
        })?;
        found.map(|i| self.name_entry(i)).transpose()
    }

    /// Value entry `i` of a name: the value's symbol, postings offset and length.
    fn value_entry(&self, n: &NameEntry, i: usize) -> Result<(u32, usize, usize), DecodeError> {
        let mut r = Reader::at(self.data, n.values_table + TABLE_ENTRY_LEN * i)?;
        Ok((r.u32()?, r.u32()? as usize, r.u32()? as usize))
    }

    /// Every value of a name with its postings position.
    pub(crate) fn values(&self, n: &NameEntry) -> Result<Vec<(u32, usize, usize)>, DecodeError> {
        (0..n.num_values).map(|i| self.value_entry(n, i)).collect()
    }

    pub(crate) fn find_value(
        &self,
        n: &NameEntry,
        value: &str,
    ) -> Result<Option<(u32, usize, usize)>, DecodeError> {
        let found = Self::search(n.num_values, value, |i| {
            self.symbol(u32_at(self.data, n.values_table + TABLE_ENTRY_LEN * i)?)
        })?;
        found.map(|i| self.value_entry(n, i)).transpose()
    }

    /// A postings list: sorted series ids.
    pub(crate) fn postings(&self, at: usize, len: usize) -> Result<Vec<u32>, DecodeError> {
        let mut r = Reader::at(self.data, at)?;
        let mut out = Vec::with_capacity(len.min(r.remaining()));
        let mut id = 0u32;
        for i in 0..len {
            let d = u32::try_from(r.uvarint()?).map_err(|_| DecodeError("posting too large"))?;
            id = id
                .checked_add(d)
                .filter(|&x| (x as usize) < self.h.num_series && (i == 0 || d > 0))
                .ok_or(DecodeError("posting out of range or unsorted"))?;
            out.push(id);
        }
        Ok(out)
    }

    /// The label symbol ids and sample location of series `id`.
    pub(crate) fn series(&self, id: u32) -> Result<(Vec<(u32, u32)>, SeriesRef), DecodeError> {
        if id as usize >= self.h.num_series {
            return Err(DecodeError("series id out of range"));
        }
        let at = u32_at(self.data, self.h.series_table + 4 * id as usize)? as usize;
        let mut r = Reader::at(self.data, at)?;
        let n = r.len(r.remaining())?;
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let name = u32::try_from(r.uvarint()?).map_err(|_| DecodeError("symbol too large"))?;
            let value = u32::try_from(r.uvarint()?).map_err(|_| DecodeError("symbol too large"))?;
            labels.push((name, value));
        }
        let ts = (r.uvarint()?, r.uvarint()?);
        let values = (r.uvarint()?, r.uvarint()?);
        let mint = r.varint()?;
        let maxt = mint.wrapping_add(r.uvarint()? as i64);
        let samples = r.uvarint()?;
        Ok((
            labels,
            SeriesRef {
                ts,
                values,
                mint,
                maxt,
                samples,
            },
        ))
    }

    pub(crate) fn labels(&self, ids: &[(u32, u32)]) -> Result<Labels, DecodeError> {
        let mut pairs = Vec::with_capacity(ids.len());
        for &(n, v) in ids {
            pairs.push((self.symbol(n)?, self.symbol(v)?));
        }
        Ok(Labels::from_pairs(pairs))
    }
}
