//! What a report is beside its row: its status, the job it is submitted as,
//! and the trace its work is logged under.

use std::fmt;
use std::str::FromStr;

use service::trace::TraceParent;

/// Where a report is in its life. Stored and shown as its lowercase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportStatus {
    /// Kept, its job not yet submitted (or to be submitted again).
    Pending,
    /// Its job was accepted by a gateway.
    Dispatched,
    /// Its job runs on a worker.
    Processing,
    Completed,
    Failed,
    Cancelled,
}

impl ReportStatus {
    pub const ALL: [ReportStatus; 6] = [
        ReportStatus::Pending,
        ReportStatus::Dispatched,
        ReportStatus::Processing,
        ReportStatus::Completed,
        ReportStatus::Failed,
        ReportStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReportStatus::Pending => "pending",
            ReportStatus::Dispatched => "dispatched",
            ReportStatus::Processing => "processing",
            ReportStatus::Completed => "completed",
            ReportStatus::Failed => "failed",
            ReportStatus::Cancelled => "cancelled",
        }
    }

    /// Whether the report has ended: nothing changes it any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ReportStatus::Completed | ReportStatus::Failed | ReportStatus::Cancelled
        )
    }
}

impl fmt::Display for ReportStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is no report status.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{0}` is not a report status (pending, dispatched, processing, completed, failed or cancelled)"
)]
pub struct UnknownStatus(String);

impl FromStr for ReportStatus {
    type Err = UnknownStatus;

    fn from_str(name: &str) -> Result<Self, UnknownStatus> {
        ReportStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == name)
            .ok_or_else(|| UnknownStatus(name.to_string()))
    }
}

impl TryFrom<String> for ReportStatus {
    type Error = UnknownStatus;

    fn try_from(name: String) -> Result<Self, UnknownStatus> {
        name.parse()
    }
}

/// The job a report is submitted as: derived from the report, so that a retry
/// after a lost answer finds the same job, and a cancellation finds it too.
pub(crate) fn job_id_of(report_id: &str) -> String {
    format!("report-{report_id}")
}

/// A report's trace: its id (a UUID, which every report has) is the trace's
/// id, so that the report's id finds its log lines in every role.
pub(crate) fn trace_of(report_id: &str) -> TraceParent {
    uuid::Uuid::parse_str(report_id).map_or_else(
        |_| TraceParent::start(),
        |id| TraceParent::of_trace(id.as_u128()),
    )
}

/// The span of the work done for one report, naming it and its trace.
pub(crate) fn report_span(report_id: &str) -> tracing::Span {
    tracing::info_span!("report", report_id, trace_id = %trace_of(report_id).trace_id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_reads_back_from_its_name_and_no_other_name_reads() {
        for status in ReportStatus::ALL {
            assert_eq!(status.as_str().parse::<ReportStatus>().unwrap(), status);
        }
        let unknown = "Completed".parse::<ReportStatus>().unwrap_err();
        assert!(unknown.to_string().contains("`Completed`"), "{unknown}");
        let ended: Vec<_> = ReportStatus::ALL
            .into_iter()
            .filter(|status| status.is_final())
            .collect();
        assert_eq!(
            ended,
            [
                ReportStatus::Completed,
                ReportStatus::Failed,
                ReportStatus::Cancelled
            ]
        );
    }
}
