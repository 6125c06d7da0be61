use crate::Labels;

/// An opaque handle to a series inside a storage engine, returned by [`Appender::append`] so that the
/// next scrape can append to the same series without looking its labels up again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeriesRef(pub u64);

/// Why a sample was not accepted. Per-sample errors ([`AppendError::OutOfOrder`],
/// [`AppendError::DuplicateSample`], [`AppendError::TooOld`]) drop that sample only; the batch goes on.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The sample is older than the newest sample of its series.
    #[error("out of order sample")]
    OutOfOrder,
    /// The series already has a sample at this timestamp with a different value.
    #[error("duplicate sample for timestamp")]
    DuplicateSample,
    /// The sample is older than what the storage still accepts (retention or head window).
    #[error("out of bounds")]
    TooOld,
    /// The label set is not valid (empty, unsorted, duplicate names, or no metric name).
    #[error("invalid series {0}: {1}")]
    InvalidSeries(String, &'static str),
    /// The storage engine could not persist the batch; nothing of it was kept.
    #[error("storage: {0}")]
    Storage(String),
    /// [`Appender::append_ref`] cannot use the ref alone (the series is gone, or its definition
    /// is not durable yet): append by labels instead.
    #[error("series ref needs its labels")]
    NeedLabels,
}

impl AppendError {
    /// Whether the error concerns only the one sample (the batch may continue).
    pub fn is_per_sample(&self) -> bool {
        matches!(
            self,
            AppendError::OutOfOrder | AppendError::DuplicateSample | AppendError::TooOld
        )
    }
}

/// A transaction of samples: everything appended becomes visible together at [`Appender::commit`],
/// or not at all after [`Appender::rollback`] or a failed commit.
pub trait Appender: Send {
    /// Adds one sample. `hint` must be `None` or a ref returned earlier for these same labels (the
    /// scrape cache keeps them per series); the engine trusts it, as Prometheus does, and falls back to
    /// a lookup by labels when the ref is unknown or belongs to a series that no longer exists.
    fn append(
        &mut self,
        hint: Option<SeriesRef>,
        labels: &Labels,
        t: i64,
        v: f64,
    ) -> Result<SeriesRef, AppendError>;

    /// Adds one sample to the series `r` names, a ref returned by an earlier
    /// [`Appender::append`], without its labels: a scrape cache then keeps refs, not label sets.
    /// [`AppendError::NeedLabels`] means the ref cannot be used alone and the caller appends by
    /// labels; other errors are as for `append`. The default asks for labels every time.
    fn append_ref(&mut self, r: SeriesRef, t: i64, v: f64) -> Result<(), AppendError> {
        let _ = (r, t, v);
        Err(AppendError::NeedLabels)
    }

    /// Makes the whole batch visible, durably as far as the engine promises.
    fn commit(self: Box<Self>) -> Result<(), AppendError>;

    /// Discards the batch.
    fn rollback(self: Box<Self>);
}

/// Something that hands out appenders: the storage engine, or a test double.
pub trait Appendable: Send + Sync {
    /// Starts a new batch.
    fn appender(&self) -> Box<dyn Appender + '_>;
}
