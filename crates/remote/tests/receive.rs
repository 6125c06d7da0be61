//! The receiver's status codes and commit semantics against an in-memory `Appendable`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use edgeprom_model::{AppendError, Appendable, Appender, Labels, Sample, SeriesRef};
use edgeprom_remote::proto::v2;
use edgeprom_remote::receive::{self, DEFAULT_MAX_DECOMPRESSED_BYTES};
use edgeprom_remote::{BatchSeries, Encoder, RemoteWriteMessage, WriteBatch, content_type};
use prost::Message;
use reqwest::StatusCode;

const NOW: i64 = 1_700_000_000_000;

/// Series → samples; refuses out-of-order and duplicate samples like the head does.
#[derive(Default)]
struct Memory {
    data: Mutex<BTreeMap<Labels, Vec<(i64, f64)>>>,
}

struct Batch<'a> {
    mem: &'a Memory,
    pending: Vec<(Labels, i64, f64)>,
}

impl Appendable for Memory {
    fn appender(&self) -> Box<dyn Appender + '_> {
        Box::new(Batch {
            mem: self,
            pending: Vec::new(),
        })
    }
}

impl Appender for Batch<'_> {
    fn append(
        &mut self,
        _hint: Option<SeriesRef>,
        labels: &Labels,
        t: i64,
        v: f64,
    ) -> Result<SeriesRef, AppendError> {
        let data = self.mem.data.lock().expect("lock");
        let last = self
            .pending
            .iter()
            .rev()
            .find(|(l, _, _)| l == labels)
            .map(|(_, t, v)| (*t, *v))
            .or_else(|| data.get(labels).and_then(|s| s.last().copied()));
        if let Some((lt, lv)) = last {
            if t < lt {
                return Err(AppendError::OutOfOrder);
            }
            if t == lt && v.to_bits() != lv.to_bits() {
                return Err(AppendError::DuplicateSample);
            }
        }
        self.pending.push((labels.clone(), t, v));
        Ok(SeriesRef(1))
    }

    fn commit(self: Box<Self>) -> Result<(), AppendError> {
        let mut data = self.mem.data.lock().expect("lock");
        for (l, t, v) in self.pending {
            data.entry(l).or_default().push((t, v));
        }
        Ok(())
    }

    fn rollback(self: Box<Self>) {}
}

impl Memory {
    fn samples(&self, name: &str) -> Vec<(i64, f64)> {
        let data = self.data.lock().expect("lock");
        data.iter()
            .filter(|(l, _)| l.metric_name() == name)
            .flat_map(|(_, s)| s.clone())
            .collect()
    }
}

fn series(name: &str, samples: &[(i64, f64)]) -> BatchSeries {
    BatchSeries {
        labels: Labels::from_pairs([("__name__", name), ("job", "edge")]),
        samples: samples.iter().map(|&(t, v)| Sample { t, v }).collect(),
        ..Default::default()
    }
}

fn body(batch: &WriteBatch, m: RemoteWriteMessage) -> Vec<u8> {
    Encoder::new().encode(batch, m).expect("encode").to_vec()
}

fn post(mem: &Memory, ct: Option<&str>, enc: Option<&str>, body: &[u8]) -> receive::Response {
    receive::handle(
        mem,
        None,
        ct,
        enc,
        body,
        DEFAULT_MAX_DECOMPRESSED_BYTES,
        NOW,
    )
}

fn written(r: &receive::Response) -> String {
    r.headers()[0].1.clone()
}

#[test]
fn both_versions_are_written_with_204_and_counts() {
    for m in [RemoteWriteMessage::V1, RemoteWriteMessage::V2] {
        let mem = Memory::default();
        let b = WriteBatch {
            series: vec![
                series("a", &[(NOW, 1.0), (NOW + 1, 2.0)]),
                series("b", &[(NOW, 3.0)]),
            ],
            metadata: vec![],
        };
        let r = post(&mem, Some(content_type(m)), Some("snappy"), &body(&b, m));
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{m}: {}", r.body);
        assert_eq!(written(&r), "3");
        assert_eq!(mem.samples("a"), [(NOW, 1.0), (NOW + 1, 2.0)]);
    }
    // No Content-Type and no Content-Encoding: 1.0 with snappy, as Prometheus assumes.
    let mem = Memory::default();
    let b = WriteBatch {
        series: vec![series("a", &[(NOW, 1.0)])],
        metadata: vec![],
    };
    let r = post(&mem, None, None, &body(&b, RemoteWriteMessage::V1));
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
}

#[test]
fn v1_out_of_order_refuses_the_whole_request() {
    let mem = Memory::default();
    let m = RemoteWriteMessage::V1;
    let b = WriteBatch {
        series: vec![
            series("a", &[(NOW, 1.0)]),
            series("b", &[(NOW, 1.0), (NOW - 5, 2.0)]),
        ],
        metadata: vec![],
    };
    let r = post(&mem, Some(content_type(m)), Some("snappy"), &body(&b, m));
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body, "out of order sample\n");
    assert!(
        mem.samples("a").is_empty(),
        "1.0 keeps nothing of a refused request"
    );
}

#[test]
fn v2_partial_write_keeps_the_rest_and_says_how_much() {
    let mem = Memory::default();
    let m = RemoteWriteMessage::V2;
    let b = WriteBatch {
        series: vec![
            series("a", &[(NOW, 1.0)]),
            series("b", &[(NOW, 1.0), (NOW - 5, 2.0)]),
            series("c", &[(NOW + 11 * 60 * 1000, 1.0)]),
        ],
        metadata: vec![],
    };
    let r = post(&mem, Some(content_type(m)), Some("snappy"), &body(&b, m));
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(written(&r), "2");
    assert!(
        r.body
            .contains("out of order sample for series b{job=\"edge\"}"),
        "{}",
        r.body
    );
    assert!(r.body.contains("too far in the future"), "{}", r.body);
    assert_eq!(mem.samples("a"), [(NOW, 1.0)]);
    assert_eq!(mem.samples("b"), [(NOW, 1.0)]);
}

#[test]
fn v2_invalid_labels_are_a_400_after_writing_the_rest() {
    let mem = Memory::default();
    let req = v2::Request {
        symbols: vec!["".into(), "__name__".into(), "ok".into(), "job".into()],
        timeseries: vec![
            v2::TimeSeries {
                labels_refs: vec![1, 2],
                samples: vec![v2::Sample {
                    value: 1.0,
                    timestamp: NOW,
                    start_timestamp: 0,
                }],
                ..Default::default()
            },
            v2::TimeSeries {
                labels_refs: vec![3, 2],
                samples: vec![v2::Sample {
                    value: 1.0,
                    timestamp: NOW,
                    start_timestamp: 0,
                }],
                ..Default::default()
            },
        ],
    };
    let compressed = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .expect("compress");
    let m = RemoteWriteMessage::V2;
    let r = post(&mem, Some(content_type(m)), Some("snappy"), &compressed);
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("no metric name"), "{}", r.body);
    assert_eq!(written(&r), "1");
    assert_eq!(mem.samples("ok"), [(NOW, 1.0)]);
}

#[test]
fn bad_requests_get_prometheus_status_codes() {
    let mem = Memory::default();
    let b = WriteBatch {
        series: vec![series("a", &[(NOW, 1.0)])],
        metadata: vec![],
    };
    let v1 = body(&b, RemoteWriteMessage::V1);
    type Case<'a> = (
        Option<&'a str>,
        Option<&'a str>,
        &'a [u8],
        StatusCode,
        &'a str,
    );
    let cases: &[Case] = &[
        (
            Some("application/x-protobuf;proto=io.prometheus.write.v3.Request"),
            None,
            &v1,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unknown type for remote write protobuf message",
        ),
        (
            Some("application/json"),
            None,
            &v1,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected application/x-protobuf as the first (media) part",
        ),
        (
            None,
            Some("gzip"),
            &v1,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "gzip encoding (compression) is not accepted",
        ),
        (
            None,
            None,
            b"\xff\xff\xff",
            StatusCode::BAD_REQUEST,
            "snappy",
        ),
    ];
    for (ct, enc, body, status, msg) in cases {
        let r = post(&mem, *ct, *enc, body);
        assert_eq!(r.status, *status, "{ct:?} {enc:?}: {}", r.body);
        assert!(r.body.contains(msg), "{ct:?}: {}", r.body);
        assert!(r.body.ends_with('\n'));
    }
    let huge = snap::raw::Encoder::new()
        .compress_vec(&vec![0u8; 2048])
        .expect("compress");
    let r = receive::handle(&mem, None, None, None, &huge, 1024, NOW);
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);
    assert!(mem.samples("a").is_empty());
}

#[test]
fn native_histograms_are_refused_and_the_floats_kept() {
    let mem = Memory::default();
    let sample = |v| v2::Sample {
        value: v,
        timestamp: NOW,
        start_timestamp: 0,
    };
    let req = v2::Request {
        symbols: vec!["".into(), "__name__".into(), "h".into(), "f".into()],
        timeseries: vec![
            v2::TimeSeries {
                labels_refs: vec![1, 2],
                histograms: vec![v2::Histogram {
                    sum: 1.0,
                    timestamp: NOW,
                }],
                ..Default::default()
            },
            v2::TimeSeries {
                labels_refs: vec![1, 3],
                samples: vec![sample(2.0)],
                ..Default::default()
            },
            v2::TimeSeries {
                labels_refs: vec![1, 3],
                ..Default::default()
            },
        ],
    };
    let compressed = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .expect("compress");
    let m = RemoteWriteMessage::V2;
    let r = post(&mem, Some(content_type(m)), Some("snappy"), &compressed);
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body,
        "TimeSeries must contain at least one sample or histogram for series f\n\
         1 native histogram samples not written: edgeprom stores float samples only\n"
    );
    assert_eq!(written(&r), "1");
    assert_eq!(r.headers()[1].1, "0");
    assert_eq!(mem.samples("f"), [(NOW, 2.0)]);
}

/// Keeps exemplars per series, refusing one older than the series' newest.
#[derive(Default)]
struct Ring(BTreeMap<Labels, Vec<(i64, f64)>>);

impl receive::ExemplarSink for Ring {
    fn add(
        &mut self,
        series: &Labels,
        e: &edgeprom_remote::BatchExemplar,
    ) -> Result<(), receive::ExemplarRefusal> {
        let list = self.0.entry(series.clone()).or_default();
        if list.last().is_some_and(|&(t, _)| e.timestamp < t) {
            return Err(receive::ExemplarRefusal::OutOfOrder);
        }
        list.push((e.timestamp, e.value));
        Ok(())
    }
}

#[test]
fn exemplars_go_to_the_sink_after_the_commit() {
    let ex = |t, v| edgeprom_remote::BatchExemplar {
        labels: Labels::from_pairs([("trace_id", "abc")]),
        value: v,
        timestamp: t,
    };
    let mut s = series("a", &[(NOW, 1.0)]);
    s.exemplars = vec![ex(NOW, 0.5), ex(NOW - 1, 0.25)];
    let b = WriteBatch {
        series: vec![s],
        metadata: vec![],
    };
    for (m, status, stored) in [
        (RemoteWriteMessage::V1, StatusCode::NO_CONTENT, "1"),
        (RemoteWriteMessage::V2, StatusCode::BAD_REQUEST, "1"),
    ] {
        let mem = Memory::default();
        let mut ring = Ring::default();
        let r = receive::handle(
            &mem,
            Some(&mut ring),
            Some(content_type(m)),
            Some("snappy"),
            &body(&b, m),
            DEFAULT_MAX_DECOMPRESSED_BYTES,
            NOW,
        );
        assert_eq!(r.status, status, "{m}: {}", r.body);
        assert_eq!(r.headers()[2].1, stored, "{m}");
        assert_eq!(ring.0.values().next().map(Vec::len), Some(1), "{m}");
        if m == RemoteWriteMessage::V2 {
            assert!(
                r.body
                    .contains("out of order exemplar for series a{job=\"edge\"}"),
                "{}",
                r.body
            );
        }
    }
}
