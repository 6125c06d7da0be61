use proptest::prelude::*;

use super::shapes;
use super::*;

const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

fn encode(samples: &[(i64, f64)]) -> XorAppender {
    let mut a = XorAppender::new();
    for &(t, v) in samples {
        a.append(t, v);
    }
    a
}

/// Decodes everything, asserting the chunk is intact; values as bits so NaNs compare.
fn decode(bytes: &[u8]) -> Vec<(i64, u64)> {
    let mut it = XorIterator::new(bytes).expect("header");
    let out: Vec<_> = it.by_ref().map(|(t, v)| (t, v.to_bits())).collect();
    assert_eq!(it.err(), None);
    out
}

fn bits_of(samples: &[(i64, f64)]) -> Vec<(i64, u64)> {
    samples.iter().map(|&(t, v)| (t, v.to_bits())).collect()
}

/// The stream (after the header) as a string of '0'/'1'.
fn bit_string(bytes: &[u8]) -> String {
    bytes[2..].iter().map(|b| format!("{b:08b}")).collect()
}

/// Packs a '0'/'1' string (spaces ignored) after a count header, zero-filling the last byte.
fn chunk_from_bits(count: u16, bits: &str) -> Vec<u8> {
    let bits: Vec<u8> = bits.bytes().filter(|b| *b != b' ').collect();
    let mut out = count.to_be_bytes().to_vec();
    for byte in bits.chunks(8) {
        let mut b = 0u8;
        for (i, bit) in byte.iter().enumerate() {
            if *bit == b'1' {
                b |= 0x80 >> i;
            }
        }
        out.push(b);
    }
    out
}

// Hand-derived vectors. Sample 0 is zigzag varint(t) then the raw 64 value bits; sample 1 the
// uvarint delta then the XOR; later samples a delta-of-delta bucket then the XOR. The stream ends
// on the byte holding its last bit (Prometheus since 3.0; 2.x left an extra empty byte after a
// byte-aligned stream, see `prometheus_2_pad_byte_is_accepted_and_dropped_on_reopen`).

#[test]
fn one_sample_bytes() {
    // zigzag(1000) = 2000 = 0b1111_1010000 → 0xd0 0x0f; 1.0 = 0x3ff0000000000000.
    let a = encode(&[(1000, 1.0)]);
    assert_eq!(a.bytes(), [0, 1, 0xd0, 0x0f, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(decode(a.bytes()), bits_of(&[(1000, 1.0)]));
}

#[test]
fn two_sample_bytes() {
    // delta 15000 → uvarint 0x98 0x75; 1.0 ^ 2.0 = 0x7ff0000000000000:
    // 1 leading, 52 trailing, 11 significant → `1 1 00001 001011 11111111111` = 0xc2 0x5f 0xff.
    let s = [(1000, 1.0), (16000, 2.0)];
    let a = encode(&s);
    assert_eq!(
        a.bytes(),
        [
            0, 2, 0xd0, 0x0f, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x98, 0x75, 0xc2, 0x5f, 0xff
        ]
    );
    assert_eq!(decode(a.bytes()), bits_of(&s));
}

#[test]
fn three_sample_bytes() {
    // delta 15001, dod 1 → `10 00000000000001`; 2.0 ^ 3.0 = 0x0008000000000000 has 12 leading
    // and 51 trailing zeros, outside the (1, 52) window → `1 1 01100 000001 1`.
    // Stream tail: 10000000 00000001 11011000 000011(00) = 0x80 0x01 0xd8 0x0c.
    let s = [(1000, 1.0), (16000, 2.0), (31001, 3.0)];
    let a = encode(&s);
    assert_eq!(
        a.bytes(),
        [
            0, 3, 0xd0, 0x0f, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x98, 0x75, 0xc2, 0x5f, 0xff, 0x80,
            0x01, 0xd8, 0x0c
        ]
    );
    assert_eq!(decode(a.bytes()), bits_of(&s));
}

#[test]
fn three_sample_bytes_negative_time_and_window_reuse() {
    // zigzag(-2000) = 3999 → 0x9f 0x1f; delta 1000 → 0xe8 0x07;
    // 1.0 ^ 3.0 = 0x7ff8000000000000 (1 leading, 51 trailing, 12 sig) → `1 1 00001 001100 1×12`;
    // dod 0 → `0`; 3.0 ^ 2.0 = 0x0008000000000000 fits the (1, 51) window → `1 0 000000000001`.
    // 11000010 01100111 11111111 1|0|10|0000 00000001 = 0xc2 0x67 0xff 0xa0 0x01: 40 bits.
    let s = [(-2000, 1.0), (-1000, 3.0), (0, 2.0)];
    let a = encode(&s);
    assert_eq!(
        a.bytes(),
        [
            0, 3, 0x9f, 0x1f, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0xe8, 0x07, 0xc2, 0x67, 0xff, 0xa0,
            0x01
        ]
    );
    assert_eq!(decode(a.bytes()), bits_of(&s));
}

#[test]
fn empty_chunk() {
    let a = XorAppender::new();
    assert_eq!(a.bytes(), [0, 0]);
    assert_eq!(a.num_samples(), 0);
    assert_eq!(a.first_time(), None);
    assert_eq!(a.last_time(), None);
    assert_eq!(a.iter().count(), 0);
}

#[test]
fn dod_buckets_and_their_boundaries() {
    // Samples 0 and 1 take 8 + 64 + 16 + 1 bits (t=0, delta 1000, unchanged value); sample 2's
    // timestamp field starts at bit 89. The buckets hold -(2^(n-1) - 1) ..= 2^(n-1).
    let cases: &[(i64, &str)] = &[
        (0, "0"),
        (1, "10 00000000000001"),
        (-1, "10 11111111111111"),
        (8192, "10 10000000000000"),
        (-8191, "10 10000000000001"),
        (-8192, "110 11110000000000000"),
        (65536, "110 10000000000000000"),
        (-65536, "1110 11110000000000000000"),
        (524288, "1110 10000000000000000000"),
        (
            -524288,
            "1111 1111111111111111111111111111111111111111111110000000000000000000",
        ),
        (
            524289,
            "1111 0000000000000000000000000000000000000000000010000000000000000001",
        ),
    ];
    for &(dod, want) in cases {
        let s = [(0, 5.0), (1000, 5.0), (2000 + dod, 5.0)];
        let a = encode(&s);
        let want: String = want.chars().filter(|c| *c != ' ').collect();
        let bits = bit_string(a.bytes());
        assert_eq!(&bits[89..89 + want.len()], want, "dod {dod}");
        assert_eq!(&bits[89 + want.len()..90 + want.len()], "0", "dod {dod}");
        assert_eq!(decode(a.bytes()), bits_of(&s), "dod {dod}");
    }
}

#[test]
fn sixty_four_significant_bits_are_written_as_zero() {
    // 1.0 ^ -0.5 = 0x3ff0... ^ 0xbfe0... = 0x8010000000000000: 0 leading, 52 trailing, but the
    // next XOR (0x8000000000000001) needs all 64 bits, whose width field reads 0.
    let b = f64::from_bits(0x3fe0_0000_0000_0001);
    let s = [(0, 1.0), (1, -0.5), (2, b)];
    let a = encode(&s);
    let bits = bit_string(a.bytes());
    // Sample 2 starts after 8 + 64 + 8 + (2 + 5 + 6 + 12) bits = 105; dod 0, then a new window.
    assert_eq!(&bits[105..119], "0 11 00000 000000".replace(' ', ""));
    assert_eq!(decode(a.bytes()), bits_of(&s));
}

#[test]
fn leading_zeros_clamp_to_31() {
    // XOR 1 has 63 leading zeros; the 5-bit field holds 31 and the rest ride along as value bits.
    let s = [(0, f64::from_bits(0)), (1, f64::from_bits(1))];
    let a = encode(&s);
    let bits = bit_string(a.bytes());
    // 8 + 64 + 8 bits before sample 1's value: `1 1 11111 100001` then 33 bits ending in 1.
    let want = format!("1111111100001{}1", "0".repeat(32));
    assert_eq!(&bits[80..80 + want.len()], want);
    assert_eq!(decode(a.bytes()), bits_of(&s));
}

#[test]
fn reuse_before_any_window_means_all_64_bits() {
    // What Prometheus's appender writes after reopening a chunk whose value never changed: it
    // assumes a (0, 0) window, so the next change is `1 0` and 64 raw XOR bits.
    let x = 1.0f64.to_bits() ^ 2.0f64.to_bits();
    let bits = format!(
        "00000000 {:064b} 11101000 00000111 0  0 1 0 {:064b}",
        1.0f64.to_bits(),
        x
    );
    let bytes = chunk_from_bits(3, &bits);
    assert_eq!(
        decode(&bytes),
        bits_of(&[(0, 1.0), (1000, 1.0), (2000, 2.0)])
    );
    // Reopening keeps that (0, 0) window, as Prometheus's decoder would see it.
    let mut a = XorAppender::from_bytes(bytes).expect("valid");
    a.append(3000, 4.0);
    assert_eq!(
        decode(a.bytes()),
        bits_of(&[(0, 1.0), (1000, 1.0), (2000, 2.0), (3000, 4.0)])
    );
}

#[test]
fn shapes_round_trip_full_chunks() {
    for seed in 0..20 {
        for (name, s) in shapes::all(seed, usize::from(MAX_SAMPLES_PER_CHUNK)) {
            let a = encode(&s);
            assert_eq!(a.num_samples(), MAX_SAMPLES_PER_CHUNK);
            assert_eq!(decode(a.bytes()), bits_of(&s), "{name} seed {seed}");
            assert_eq!(a.first_time(), Some(s[0].0));
            assert_eq!(a.last_time(), Some(s[s.len() - 1].0));
            let v: Vec<_> = a.iter().map(|(t, v)| (t, v.to_bits())).collect();
            assert_eq!(v, bits_of(&s));
        }
    }
}

#[test]
fn bytes_are_a_valid_chunk_after_every_append() {
    for (name, s) in shapes::all(7, 120) {
        let mut a = XorAppender::new();
        for (i, &(t, v)) in s.iter().enumerate() {
            a.append(t, v);
            assert_eq!(decode(a.bytes()), bits_of(&s[..=i]), "{name} after {i}");
        }
    }
}

#[test]
fn nan_payloads_and_stale_markers_are_bit_exact() {
    let values = [
        STALE_NAN,
        f64::NAN.to_bits(),
        0x7ff8_0000_0000_0001,
        0xfff8_dead_beef_0001,
        0x7ff0_0000_0000_0001,
        STALE_NAN,
        STALE_NAN,
        (-0.0f64).to_bits(),
        0.0f64.to_bits(),
        f64::INFINITY.to_bits(),
        f64::NEG_INFINITY.to_bits(),
        1,
        f64::MIN_POSITIVE.to_bits(),
        u64::MAX,
        0,
        STALE_NAN,
    ];
    let s: Vec<_> = values
        .iter()
        .enumerate()
        .map(|(i, &b)| (i as i64 * 15_000, f64::from_bits(b)))
        .collect();
    let a = encode(&s);
    let got: Vec<u64> = decode(a.bytes()).into_iter().map(|(_, v)| v).collect();
    assert_eq!(got, values);
}

#[test]
fn extreme_timestamps_and_deltas() {
    let ts = [
        i64::MIN,
        i64::MIN + 1,
        -1_000_000_000_000,
        -15_000,
        -1,
        0,
        0,
        1,
        1 << 40,
        (1 << 40) + 15_000,
        i64::MAX - 1,
        i64::MAX,
    ];
    let s: Vec<_> = ts.iter().map(|&t| (t, t as f64)).collect();
    let a = encode(&s);
    assert_eq!(decode(a.bytes()), bits_of(&s));
    // Even out-of-order input (a caller bug) decodes to what was appended, as the arithmetic wraps.
    let s = [
        (5, 1.0),
        (i64::MAX, 2.0),
        (i64::MIN, 3.0),
        (0, 4.0),
        (-7, 5.0),
    ];
    assert_eq!(decode(encode(&s).bytes()), bits_of(&s));
}

#[test]
fn reopen_then_append_equals_appending_at_once() {
    for (name, s) in shapes::all(3, 120) {
        let whole = encode(&s);
        for k in 0..=s.len() {
            let part = encode(&s[..k]).into_bytes();
            let mut a = XorAppender::from_bytes(part).expect("reopens");
            assert_eq!(a.num_samples() as usize, k);
            for &(t, v) in &s[k..] {
                a.append(t, v);
            }
            assert_eq!(a.bytes(), whole.bytes(), "{name} split at {k}");
            assert_eq!(a.first_time(), whole.first_time());
            assert_eq!(a.last_time(), whole.last_time());
        }
    }
}

#[test]
fn reopen_drops_trailing_garbage() {
    let s = [(1000, 1.0), (16000, 2.0), (31001, 3.0)];
    let mut bytes = encode(&s).into_bytes();
    // Garbage in the unused low bits of the last byte and after it.
    *bytes.last_mut().expect("non-empty") |= 0x03;
    bytes.extend_from_slice(&[0xff, 0xee]);
    let mut a = XorAppender::from_bytes(bytes).expect("reopens");
    a.append(46001, 4.0);
    let mut want = encode(&s);
    want.append(46001, 4.0);
    assert_eq!(a.bytes(), want.bytes());
}

#[test]
fn prometheus_2_pad_byte_is_accepted_and_dropped_on_reopen() {
    let mut old = encode(&[(1000, 1.0)]).into_bytes();
    old.push(0);
    assert_eq!(decode(&old), bits_of(&[(1000, 1.0)]));
    let mut a = XorAppender::from_bytes(old).expect("reopens");
    assert_eq!(a.bytes(), encode(&[(1000, 1.0)]).bytes());
    a.append(16000, 2.0);
    assert_eq!(a.bytes(), encode(&[(1000, 1.0), (16000, 2.0)]).bytes());
}

#[test]
fn reopen_refuses_corrupt_chunks() {
    assert_eq!(
        XorAppender::from_bytes(vec![0]).err(),
        Some(ChunkError::TooShort { len: 1 })
    );
    let mut bytes = encode(&[(1000, 1.0), (16000, 2.0)]).into_bytes();
    bytes[1] = 3;
    assert_eq!(
        XorAppender::from_bytes(bytes).err(),
        Some(ChunkError::Truncated {
            decoded: 2,
            total: 3
        })
    );
}

#[test]
fn truncated_chunks_yield_a_prefix_and_an_error() {
    for (_, s) in shapes::all(11, 120) {
        let bytes = encode(&s).into_bytes();
        let want = bits_of(&s);
        for len in 0..bytes.len() {
            let Ok(mut it) = XorIterator::new(&bytes[..len]) else {
                assert!(len < 2);
                continue;
            };
            let got: Vec<_> = it.by_ref().map(|(t, v)| (t, v.to_bits())).collect();
            assert_eq!(got[..], want[..got.len()]);
            if got.len() < want.len() {
                assert!(
                    matches!(it.err(), Some(ChunkError::Truncated { .. })),
                    "len {len}: {:?}",
                    it.err()
                );
            }
            // Stopped iterators stay stopped.
            assert_eq!(it.next_sample(), None);
            assert_eq!(it.seek(i64::MIN), None);
        }
    }
}

#[test]
fn bad_varint_and_bad_width_are_errors() {
    let mut bytes = vec![0, 1];
    bytes.extend_from_slice(&[0xff; 10]);
    bytes.extend_from_slice(&[0; 8]);
    let mut it = XorIterator::new(&bytes).expect("header");
    assert_eq!(it.next_sample(), None);
    assert_eq!(it.err(), Some(&ChunkError::VarintOverflow { sample: 0 }));

    // 31 leading zeros with the width field 0 (= 64 significant bits) cannot be.
    let bits = format!("00000000 {:064b} 00000001 1 1 11111 000000", 0u64);
    let bytes = chunk_from_bits(2, &bits);
    let mut it = XorIterator::new(&bytes).expect("header");
    assert!(it.next_sample().is_some());
    assert_eq!(it.next_sample(), None);
    assert_eq!(
        it.err(),
        Some(&ChunkError::BadValueWidth {
            sample: 1,
            leading: 31,
            significant: 64
        })
    );
}

#[test]
fn seek_finds_the_first_sample_at_or_after_and_never_goes_back() {
    let s: Vec<_> = (0..120).map(|i| (i * 15_000, i as f64)).collect();
    let a = encode(&s);
    let mut it = a.iter();
    assert_eq!(it.seek(-5), Some((0, 0.0)));
    assert_eq!(it.seek(14_999), Some((15_000, 1.0)));
    assert_eq!(it.seek(15_000), Some((15_000, 1.0)));
    assert_eq!(it.next_sample(), Some((30_000, 2.0)));
    assert_eq!(it.seek(0), Some((30_000, 2.0)));
    assert_eq!(it.seek(1_784_999), Some((1_785_000, 119.0)));
    assert_eq!(it.seek(1_785_001), None);
    assert_eq!(it.err(), None);
    assert_eq!(a.iter().seek(i64::MAX), None);
}

fn sample() -> impl Strategy<Value = (i64, u64)> {
    prop_oneof![
        (any::<i64>(), any::<u64>()),
        // Mostly-regular scrapes so that the small buckets and window reuse get exercised too.
        (
            -3i64..4,
            prop::sample::select(vec![0u64, 1, 2, STALE_NAN, 0x4059_0000_0000_0000])
        ),
    ]
}

/// Turns the generated steps into samples: a small first element is a delta-of-delta style step.
fn build(steps: &[(i64, u64)]) -> Vec<(i64, f64)> {
    let mut t = 1_717_000_000_000i64;
    steps
        .iter()
        .map(|&(dt, v)| {
            t = if (-3..4).contains(&dt) {
                t.wrapping_add(15_000 + dt)
            } else {
                dt
            };
            (t, f64::from_bits(v))
        })
        .collect()
}

proptest! {
    #[test]
    fn arbitrary_sequences_round_trip(steps in prop::collection::vec(sample(), 0..300)) {
        let s = build(&steps);
        let a = encode(&s);
        prop_assert_eq!(decode(a.bytes()), bits_of(&s));
        prop_assert_eq!(usize::from(a.num_samples()), s.len());
    }

    #[test]
    fn arbitrary_reopen_matches(steps in prop::collection::vec(sample(), 0..150), k in 0usize..150) {
        let s = build(&steps);
        let k = k.min(s.len());
        let mut a = XorAppender::from_bytes(encode(&s[..k]).into_bytes()).expect("reopens");
        for &(t, v) in &s[k..] {
            a.append(t, v);
        }
        let whole = encode(&s);
        prop_assert_eq!(a.bytes(), whole.bytes());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(mut it) = XorIterator::new(&bytes) {
            let n = it.by_ref().count();
            prop_assert!(n <= usize::from(u16::from_be_bytes([bytes[0], bytes[1]])));
            let _ = it.seek(0);
        }
        if let Ok(mut it) = XorIterator::new(&bytes) {
            let _ = it.seek(1_000);
            let _ = it.next_sample();
        }
        let _ = XorAppender::from_bytes(bytes);
    }

    #[test]
    fn corrupted_chunks_never_panic(
        steps in prop::collection::vec(sample(), 1..130),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..4),
    ) {
        let mut bytes = encode(&build(&steps)).into_bytes();
        for (i, bit) in flips {
            let i = i.index(bytes.len());
            bytes[i] ^= 1 << bit;
        }
        if let Ok(it) = XorIterator::new(&bytes) {
            let _ = it.count();
        }
        if let Ok(mut a) = XorAppender::from_bytes(bytes)
            && a.num_samples() < u16::MAX
        {
            let t = a.last_time().unwrap_or(0);
            a.append(t, 1.0);
        }
    }
}
