//! The Remote-Write protobuf messages, declared by hand with `prost` derives (no `protoc`).
//!
//! Field numbers follow Prometheus's `prompb/types.proto` + `prompb/remote.proto` (1.0) and
//! `prompb/io/prometheus/write/v2/types.proto` (2.0, spec 2.0-rc.4). Native histograms are
//! declared so that requests carrying them decode, but edgeprom stores float samples only: the
//! receiver counts histogram samples as not written (see [`crate::receive`]) and the encoder never
//! sends any. The 2.0 `TimeSeries.created_timestamp` of rc.3 (field 6) is reserved in rc.4 in
//! favour of `Sample.start_timestamp`; neither is used by edgeprom.

/// Remote-Write 1.0 (`package prometheus`).
pub mod v1 {
    /// `prometheus.WriteRequest`. Field 2 is reserved (Cortex's `source`).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WriteRequest {
        /// The series with their samples.
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
        /// Metric family metadata, sent separately from the series in 1.0.
        #[prost(message, repeated, tag = "3")]
        pub metadata: Vec<MetricMetadata>,
    }

    /// `prometheus.TimeSeries`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        /// Labels, sorted by name.
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        /// Samples, oldest first.
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
        /// Exemplars.
        #[prost(message, repeated, tag = "3")]
        pub exemplars: Vec<Exemplar>,
        /// Native histogram samples (decoded, not stored by edgeprom).
        #[prost(message, repeated, tag = "4")]
        pub histograms: Vec<Histogram>,
    }

    /// `prometheus.Label`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Label {
        /// Label name.
        #[prost(string, tag = "1")]
        pub name: String,
        /// Label value.
        #[prost(string, tag = "2")]
        pub value: String,
    }

    /// `prometheus.Sample`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        /// The value.
        #[prost(double, tag = "1")]
        pub value: f64,
        /// Milliseconds since the Unix epoch.
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }

    /// `prometheus.Exemplar`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Exemplar {
        /// The exemplar's own labels (e.g. `trace_id`).
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        /// The observed value.
        #[prost(double, tag = "2")]
        pub value: f64,
        /// Milliseconds since the Unix epoch.
        #[prost(int64, tag = "3")]
        pub timestamp: i64,
    }

    /// `prometheus.MetricMetadata`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MetricMetadata {
        /// The family's type.
        #[prost(enumeration = "MetricType", tag = "1")]
        pub r#type: i32,
        /// The family name.
        #[prost(string, tag = "2")]
        pub metric_family_name: String,
        /// `# HELP` text.
        #[prost(string, tag = "4")]
        pub help: String,
        /// `# UNIT` text.
        #[prost(string, tag = "5")]
        pub unit: String,
    }

    /// `prometheus.MetricMetadata.MetricType`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum MetricType {
        /// `UNKNOWN`
        Unknown = 0,
        /// `COUNTER`
        Counter = 1,
        /// `GAUGE`
        Gauge = 2,
        /// `HISTOGRAM`
        Histogram = 3,
        /// `GAUGEHISTOGRAM`
        Gaugehistogram = 4,
        /// `SUMMARY`
        Summary = 5,
        /// `INFO`
        Info = 6,
        /// `STATESET`
        Stateset = 7,
    }

    /// `prometheus.Histogram`, the fields needed to recognise one; bucket fields are skipped on
    /// decode (prost ignores fields it does not declare).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Histogram {
        /// Sum of observations.
        #[prost(double, tag = "3")]
        pub sum: f64,
        /// Milliseconds since the Unix epoch.
        #[prost(int64, tag = "15")]
        pub timestamp: i64,
    }
}

/// Remote-Write 2.0 (`package io.prometheus.write.v2`).
pub mod v2 {
    /// `io.prometheus.write.v2.Request`. Fields 1 to 3 are reserved so that a 1.0 receiver
    /// decoding it by mistake sees an empty `WriteRequest`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Request {
        /// Every string of the request, deduplicated; index 0 is always `""`.
        #[prost(string, repeated, tag = "4")]
        pub symbols: Vec<String>,
        /// The series.
        #[prost(message, repeated, tag = "5")]
        pub timeseries: Vec<TimeSeries>,
    }

    /// `io.prometheus.write.v2.TimeSeries`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        /// Name/value pairs of indexes into `symbols`, sorted by name.
        #[prost(uint32, repeated, tag = "1")]
        pub labels_refs: Vec<u32>,
        /// Samples, oldest first.
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
        /// Native histogram samples (decoded, not stored by edgeprom).
        #[prost(message, repeated, tag = "3")]
        pub histograms: Vec<Histogram>,
        /// Exemplars.
        #[prost(message, repeated, tag = "4")]
        pub exemplars: Vec<Exemplar>,
        /// The series' metadata (always present on the wire in Prometheus's encoding).
        #[prost(message, optional, tag = "5")]
        pub metadata: Option<Metadata>,
    }

    /// `io.prometheus.write.v2.Sample`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        /// The value.
        #[prost(double, tag = "1")]
        pub value: f64,
        /// Milliseconds since the Unix epoch.
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
        /// Start (created) timestamp of a cumulative series; 0 = unset.
        #[prost(int64, tag = "3")]
        pub start_timestamp: i64,
    }

    /// `io.prometheus.write.v2.Exemplar`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Exemplar {
        /// Name/value pairs of indexes into `symbols`.
        #[prost(uint32, repeated, tag = "1")]
        pub labels_refs: Vec<u32>,
        /// The observed value.
        #[prost(double, tag = "2")]
        pub value: f64,
        /// Milliseconds since the Unix epoch.
        #[prost(int64, tag = "3")]
        pub timestamp: i64,
    }

    /// `io.prometheus.write.v2.Metadata`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Metadata {
        /// The series' type.
        #[prost(enumeration = "MetricType", tag = "1")]
        pub r#type: i32,
        /// Index of the help text in `symbols` (0 = none).
        #[prost(uint32, tag = "3")]
        pub help_ref: u32,
        /// Index of the unit in `symbols` (0 = none).
        #[prost(uint32, tag = "4")]
        pub unit_ref: u32,
    }

    /// `io.prometheus.write.v2.Metadata.MetricType`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum MetricType {
        /// `METRIC_TYPE_UNSPECIFIED`
        Unspecified = 0,
        /// `METRIC_TYPE_COUNTER`
        Counter = 1,
        /// `METRIC_TYPE_GAUGE`
        Gauge = 2,
        /// `METRIC_TYPE_HISTOGRAM`
        Histogram = 3,
        /// `METRIC_TYPE_GAUGEHISTOGRAM`
        Gaugehistogram = 4,
        /// `METRIC_TYPE_SUMMARY`
        Summary = 5,
        /// `METRIC_TYPE_INFO`
        Info = 6,
        /// `METRIC_TYPE_STATESET`
        Stateset = 7,
    }

    /// `io.prometheus.write.v2.Histogram`, the fields needed to recognise one.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Histogram {
        /// Sum of observations.
        #[prost(double, tag = "3")]
        pub sum: f64,
        /// Milliseconds since the Unix epoch.
        #[prost(int64, tag = "15")]
        pub timestamp: i64,
    }
}
