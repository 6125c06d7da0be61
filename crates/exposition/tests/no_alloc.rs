//! The sample path must not touch the heap: a counting allocator watches this thread while
//! whole bodies are parsed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use edgeprom_exposition::{Entry, Format, Parser, testgen};

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
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Parses `body`, reading each sample's identity, name, labels, value and timestamp, and
/// returns (samples, allocations made after `Parser::new`).
fn count_allocs(body: &str, format: Format) -> (usize, usize) {
    let mut p = Parser::new(body.as_bytes(), format).expect("utf8");
    COUNT.with(|c| c.set(0));
    WATCHING.with(|w| w.set(true));
    let mut samples = 0;
    let mut sink = 0.0;
    while let Some(e) = p.next().expect("parses") {
        if let Entry::Series(s) = e {
            sink += s.value() + s.raw().len() as f64 + s.name().len() as f64;
            for (n, v) in s.labels() {
                // `le` bounds like "1" are rewritten to "1.0" and so may allocate; the hot path
                // (raw identity + value) never calls labels() on a cache hit anyway.
                if n != "le" {
                    sink += v.len() as f64;
                }
            }
            samples += 1;
        }
    }
    WATCHING.with(|w| w.set(false));
    assert!(sink.is_finite());
    (samples, COUNT.with(Cell::get))
}

#[test]
fn parsing_allocates_nothing_per_sample() {
    let fe = include_str!("../../../fixtures/exposition/fe.log");
    // fe.log's integer `le` bounds get canonicalised, so compare against a body without
    // histogram TYPE lines for the strict zero, and bound fe.log by its bucket count.
    let (n, allocs) = count_allocs(fe, Format::Text);
    assert_eq!(n, 89);
    let buckets = fe.lines().filter(|l| l.contains("_bucket{")).count();
    assert!(
        allocs <= buckets,
        "{allocs} allocations for {buckets} buckets"
    );

    let body = testgen::dynamo_body(10_000).replace("# TYPE", "# HELP");
    let (n, allocs) = count_allocs(&body, Format::Text);
    assert_eq!((n, allocs), (10_000, 0));

    let om = format!(
        "{}# EOF\n",
        "m_total{a=\"x\",b=\"y\"} 1 17.5 # {t=\"1\"} 2 3\n".repeat(1000)
    );
    let (n, allocs) = count_allocs(&om, Format::OpenMetrics);
    assert_eq!((n, allocs), (1000, 0));
}
