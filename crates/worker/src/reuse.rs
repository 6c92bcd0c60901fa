//! Results reused across jobs: a result is kept in the node's cache under the
//! digest of everything that determines it, and a job with the same inputs
//! takes it instead of running the engine again.

use engine::{ModelInputs, ProjectionResult, Shocks};
use jobstore::JobStore;
use service::trace::Quoted;
use sha2::{Digest, Sha256};

use crate::Node;

/// Names a result by everything that determines it: the model revision, the
/// shocks, and the model inputs (the portfolio's value by class, every
/// parameter, the seed and the assumptions), so a changed portfolio never
/// meets an old result. The tenant is part of the name: a result reused
/// across tenants would tell one what another asked for.
pub(crate) fn result_digest(owner: &str, inputs: &ModelInputs) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"projector model inputs\0");
    hasher.update(owner.as_bytes());
    hasher.update(b"\0");
    hasher.update(engine::MODEL_REVISION.to_le_bytes());
    hasher.update(Shocks::Random.kind().name());
    hasher.update(serde_json::to_vec(inputs).unwrap_or_default());
    hasher.finalize().into()
}

/// A result computed before for the same inputs; a cache that cannot answer
/// is a miss.
pub(crate) async fn reusable_result<S: JobStore>(
    node: &Node<S>,
    digest: &[u8; 32],
    job_id: &str,
) -> Option<ProjectionResult> {
    let stored = match node.cache.result(digest).await {
        Ok(stored) => stored?,
        Err(error) => {
            tracing::warn!(job_id = %Quoted(job_id), %error, "cannot read the result cache; computing");
            return None;
        }
    };
    match serde_json::from_str(&stored) {
        Ok(result) => {
            tracing::info!(job_id = %Quoted(job_id), "result reused: the same inputs were computed before");
            Some(result)
        }
        Err(error) => {
            tracing::warn!(job_id = %Quoted(job_id), %error, "unreadable cached result; computing");
            None
        }
    }
}

pub(crate) async fn keep_result<S: JobStore>(
    node: &Node<S>,
    digest: &[u8; 32],
    result: &ProjectionResult,
) {
    let kept = match serde_json::to_string(result) {
        Ok(json) => node
            .cache
            .store_result(digest, &json)
            .await
            .map_err(|error| error.to_string()),
        Err(error) => Err(error.to_string()),
    };
    if let Err(error) = kept {
        tracing::warn!(%error, "cannot keep the result for reuse");
    }
}
