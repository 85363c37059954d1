//! Where a deploy's events go: the client's stream, and a log file kept
//! with the deploy's history.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use baton_api::{DeployEvent, StageTiming};
use baton_rollout::EventSink;
use tokio::sync::mpsc;

/// Sends each event to the waiting client (if it is still there) and
/// appends it to the deploy's log file as one JSON line.
pub struct DeployLog {
    client: mpsc::UnboundedSender<DeployEvent>,
    file: Mutex<Option<File>>,
    stages: Mutex<Vec<StageTiming>>,
}

impl DeployLog {
    /// A log writing to `path` (created with its directory); a file that
    /// cannot be created only costs the record, not the deploy.
    pub fn new(path: &Path, client: mpsc::UnboundedSender<DeployEvent>) -> Self {
        let file = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| File::create(path));
        let file = match file {
            Ok(file) => Some(file),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "Cannot write the deploy log");
                None
            }
        };
        DeployLog {
            client,
            file: Mutex::new(file),
            stages: Mutex::new(Vec::new()),
        }
    }

    /// The stages finished so far, with their durations (kept for history
    /// even when the deploy fails).
    pub fn stages(&self) -> Vec<StageTiming> {
        lock(&self.stages).clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl EventSink for DeployLog {
    fn emit(&self, event: DeployEvent) {
        if let DeployEvent::StageFinished {
            stage, duration_ms, ..
        } = &event
        {
            lock(&self.stages).push(StageTiming {
                stage: stage.clone(),
                duration_ms: *duration_ms,
            });
        }
        let mut file = lock(&self.file);
        if let Some(file) = file.as_mut()
            && let Ok(mut line) = serde_json::to_vec(&event)
        {
            line.push(b'\n');
            let _ = file.write_all(&line);
        }
        // A client that hung up does not stop the deploy.
        let _ = self.client.send(event);
    }
}
