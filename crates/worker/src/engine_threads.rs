//! The engine's own threads: projections run on a rayon pool apart from the
//! node's async runtime, and a panic in one fails that job only.

use std::sync::Arc;

use tokio::sync::oneshot;

/// The engine's threads, below the HTTP and job-store threads in priority so
/// that intake stays fast while every core runs projections.
pub(crate) fn engine_pool() -> Result<Arc<rayon::ThreadPool>, rayon::ThreadPoolBuildError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .thread_name(|index| format!("engine-{index}"))
        .start_handler(|_| lower_thread_priority())
        .build()?;
    Ok(Arc::new(pool))
}

fn lower_thread_priority() {
    const ENGINE_NICENESS: libc::c_int = 10;
    // SAFETY: setpriority only reads its arguments; `who = 0` is the calling thread on Linux.
    let changed = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, ENGINE_NICENESS) };
    if changed != 0 {
        tracing::debug!("engine thread priority left unchanged");
    }
}

#[derive(Debug, PartialEq)]
pub(crate) enum EngineFault {
    /// The work panicked; the node and its other jobs carry on.
    Panicked(String),
    /// The pool dropped the work without an answer.
    Vanished,
}

/// Runs `work` on the engine's threads. A panic is caught and returned: left
/// alone on a rayon thread it would abort the process and every job in it.
pub(crate) async fn on_engine<T, F>(pool: &rayon::ThreadPool, work: F) -> Result<T, EngineFault>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (reply, answer) = oneshot::channel();
    pool.spawn(move || {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
            .map_err(|payload| EngineFault::Panicked(panic_message(payload.as_ref())));
        let _ = reply.send(outcome);
    });
    answer.await.unwrap_or(Err(EngineFault::Vanished))
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|text| text.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_in_the_engine_fails_that_work_and_the_pool_keeps_serving() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let panicked = on_engine(&pool, || -> u32 { panic!("index out of bounds") }).await;
        assert_eq!(
            panicked,
            Err(EngineFault::Panicked("index out of bounds".to_string()))
        );
        let formatted = on_engine(&pool, || -> u32 { panic!("step {}", 7) }).await;
        assert_eq!(formatted, Err(EngineFault::Panicked("step 7".to_string())));
        assert_eq!(on_engine(&pool, || 41 + 1).await, Ok(42));
    }
}
