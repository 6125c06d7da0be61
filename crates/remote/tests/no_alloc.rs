//! A reused [`Encoder`] does not touch the heap in steady state: once its buffers have grown to a
//! batch's size, encoding another batch of that shape (1.0 or 2.0, compression included)
//! allocates nothing. A counting allocator watches this thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use edgeprom_model::{Labels, Sample, stale_nan};
use edgeprom_remote::{BatchSeries, Encoder, RemoteWriteMessage, WriteBatch};

struct Counting;

thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: defers to the system allocator; the bookkeeping uses const-initialised thread locals,
// which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if WATCHING.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if WATCHING.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// 500 series of 4 samples (2000 samples, Prometheus's default `max_samples_per_send`), 8 labels
/// each, values shifted by `shift`.
fn batch(shift: f64) -> WriteBatch {
    let series = (0..500)
        .map(|i| BatchSeries {
            labels: Labels::from_pairs([
                ("__name__", format!("metric_{}", i % 20)),
                ("instance", format!("10.0.0.{}:9100", i % 7)),
                ("job", "node".to_string()),
                ("pod", format!("pod-{i}")),
                ("namespace", "dynamo".to_string()),
                ("le", format!("{}", i % 11)),
                ("site", "edge-1".to_string()),
                ("zone", "z".to_string()),
            ]),
            samples: (0..4)
                .map(|k| Sample {
                    t: 1_700_000_000_000 + k * 15_000,
                    v: if k == 3 && i % 50 == 0 {
                        stale_nan()
                    } else {
                        i as f64 * shift + k as f64
                    },
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    WriteBatch {
        series,
        metadata: vec![],
    }
}

#[test]
fn steady_state_encoding_does_not_allocate() {
    let (warm, next) = (batch(1.0), batch(1.5));
    for message in [RemoteWriteMessage::V1, RemoteWriteMessage::V2] {
        let mut enc = Encoder::new();
        enc.encode(&warm, message).expect("encode");
        COUNT.with(|c| c.set(0));
        WATCHING.with(|w| w.set(true));
        let len = enc.encode(&next, message).expect("encode").len();
        WATCHING.with(|w| w.set(false));
        assert!(len > 0);
        assert_eq!(COUNT.with(Cell::get), 0, "{message} allocated");
    }
}
