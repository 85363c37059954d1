//! What every deploy, rollback and restore of every app shares: the store,
//! the routes, the supervised processes, where logs go.

use std::path::PathBuf;
use std::sync::Arc;

use baton_api::AppConfig;
use baton_state::Store;
use baton_supervisor::LogRotation;

use crate::process_table::ProcessTable;
use crate::route_manager::RouteManager;

/// The daemon's parts an app run works with.
pub struct AppHost {
    /// Persistence.
    pub store: Arc<Store>,
    /// The proxy's routes.
    pub routes: Arc<RouteManager>,
    /// Supervised processes.
    pub processes: Arc<ProcessTable>,
    /// `<state dir>/logs`.
    pub logs_dir: PathBuf,
    /// How process logs rotate.
    pub rotation: LogRotation,
}

impl AppHost {
    /// Runs a state call off the async workers: a commit waits for fsync.
    pub async fn on_store<T, F>(&self, call: F) -> Result<T, String>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, baton_state::StateError> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        match tokio::task::spawn_blocking(move || call(&store)).await {
            Ok(result) => result.map_err(|error| error.to_string()),
            Err(error) => Err(format!("a state call failed inside the daemon: {error}")),
        }
    }

    /// The config a release was deployed with.
    pub async fn release_config(&self, app: &str, release: &str) -> Option<AppConfig> {
        let (app, release) = (app.to_string(), release.to_string());
        let record = self
            .on_store(move |store| store.release(&app, &release))
            .await
            .ok()
            .flatten()?;
        serde_json::from_str(&record.config_json).ok()
    }
}

/// Runs blocking file work off the async workers.
pub async fn blocking<T, F>(work: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, String> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(error) => Err(format!(
            "a file operation failed inside the daemon: {error}"
        )),
    }
}
