//! Waiting for a condition, with a deadline.

use std::future::Future;
use std::time::Duration;

/// Polls `check` every 20 ms until it returns true; fails after `deadline`
/// saying what it waited for.
pub async fn wait_until<F, Fut>(deadline: Duration, what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let give_up = tokio::time::Instant::now() + deadline;
    loop {
        if check().await {
            return Ok(());
        }
        if tokio::time::Instant::now() >= give_up {
            anyhow::bail!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
