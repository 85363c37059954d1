//! Apps: deploys and rollbacks (one at a time per app, each a pipeline run
//! in its own task), and what `releases`, `history` and `ps` show.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use baton_api::{
    AppConfig, AppInfo, AppStatus, BudgetStatus, DeployEvent, DeployKind, DeployOutcomeKind,
    DeployReport, DeployRequest, HistoryEntry, ProcessInfo, ReleaseInfo, RollbackRequest,
    RolloutCommand, RolloutStatus, SloSection,
};
use baton_release::AppRoot;
use baton_rollout::{Command, DeployPlan, RollbackPlan, RolloutPlan, Strategy};
use baton_state::{AppRecord, DeployRecord};
use baton_telemetry::rollup::minute_start;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::app_budget;
use crate::app_host::AppHost;
use crate::app_run::AppRun;
use crate::app_status;
use crate::deploy_log::DeployLog;
use crate::deploy_tally::DeployTally;
use crate::notifier::Notifier;
use crate::process_spec;
use crate::process_table::unix_ms;
use crate::rollout_controller::SplitOptions;
use crate::rollup_history;
use crate::run_notices::RunNotices;

/// Why an app command was refused; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is malformed or names something that cannot be used.
    #[error("{0}")]
    Invalid(String),
    /// No such app or release.
    #[error("{0}")]
    NotFound(String),
    /// Another deploy or rollback of the app is running.
    #[error("{0}")]
    Busy(String),
    /// The state store failed.
    #[error("{0}")]
    State(String),
}

/// A deploy or rollback in progress.
struct Running {
    id: i64,
    kind: DeployKind,
    user: String,
    started: Instant,
    /// It will take rollout commands once its rollout starts.
    progressive: bool,
}

/// Deploys, rollbacks and queries over every app.
pub struct AppManager {
    host: Arc<AppHost>,
    /// The deploy counters of `/metrics`, told of every run that ends.
    deploys: Arc<DeployTally>,
    /// When this daemon started (Unix ms): requests served before are in
    /// the minute rollups, the ones after in the proxy's memory.
    started_ms: u64,
    running: Mutex<HashMap<String, Running>>,
    /// The command channel of each app's running progressive rollout.
    controls: Mutex<HashMap<String, mpsc::UnboundedSender<Command>>>,
    /// Where each app's running progressive rollout stands.
    progress: Mutex<HashMap<String, watch::Receiver<Option<RolloutStatus>>>>,
    /// Set (under the `running` lock) while the daemon hands over to a new
    /// one: no deploy may start in the process that is about to leave.
    handing_over: AtomicBool,
    /// Delivers the `[[notify]]` events of every run.
    notifier: Arc<Notifier>,
}

/// Releases an app's deploy lock when the run ends, however it ends.
struct RunGuard {
    manager: Arc<AppManager>,
    app: String,
    record: DeployRecord,
    /// Where the run's end is announced.
    notices: Option<RunNotices>,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        lock(&self.manager.running).remove(&self.app);
    }
}

impl AppManager {
    /// A manager over the daemon's parts, counting the runs that end in
    /// `deploys`.
    pub fn new(host: Arc<AppHost>, deploys: Arc<DeployTally>) -> Arc<Self> {
        Arc::new(AppManager {
            host,
            notifier: Notifier::new(Arc::clone(&deploys)),
            deploys,
            started_ms: now_ms(),
            running: Mutex::new(HashMap::new()),
            controls: Mutex::new(HashMap::new()),
            progress: Mutex::new(HashMap::new()),
            handing_over: AtomicBool::new(false),
        })
    }

    /// Refuses new deploys and rollbacks from now on, unless one runs:
    /// then says which, for the operator to wait for or abort.
    pub fn begin_handover(&self) -> Result<(), String> {
        let running = lock(&self.running);
        if let Some((app, run)) = running.iter().next() {
            return Err(format!(
                "a {} of {app} is running (#{} by {}, for {} s); a new daemon could not finish \
                 it, so the upgrade is refused: wait for it (or `baton abort --app {app}`), then \
                 upgrade",
                kind_name(run.kind),
                run.id,
                run.user,
                run.started.elapsed().as_secs()
            ));
        }
        self.handing_over.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Takes deploys again: the hand-over failed and this daemon serves on.
    pub fn end_handover(&self) {
        let _running = lock(&self.running);
        self.handing_over.store(false, Ordering::SeqCst);
    }

    /// Starts a deploy; its events arrive on the returned channel, the last
    /// one `Succeeded` or `Failed`.
    pub async fn deploy(
        self: &Arc<Self>,
        request: DeployRequest,
    ) -> Result<mpsc::UnboundedReceiver<DeployEvent>, AppError> {
        let config = request.config;
        let app = config.name().to_string();
        if !config.app.root.is_absolute() {
            return Err(AppError::Invalid(format!(
                "[app] root {:?} must be an absolute path",
                config.app.root
            )));
        }
        if let baton_api::DeploySource::Dir { path } = &request.source
            && !path.is_dir()
        {
            return Err(AppError::Invalid(format!(
                "the source {} is not a directory; pass --source DIR or --git REPO --ref REF",
                path.display()
            )));
        }
        let stored = self.stored_app(&app).await?;
        let previous = stored
            .as_ref()
            .and_then(|record| record.current_release.clone());
        let source = request.source.to_string();
        // A bad [rollout] or --strategy is refused before anything is claimed
        // or recorded.
        let progressive = plan_of(&config, request.strategy.as_deref())?;
        let notices = RunNotices::new(
            &self.notifier,
            &config,
            DeployKind::Deploy,
            &request.user,
            previous.clone(),
        )
        .map_err(AppError::Invalid)?;
        let spent = match &config.slo {
            Some(slo) => self.budget(&app, slo).await.filter(BudgetStatus::is_spent),
            None => None,
        };
        if let Some(budget) = &spent {
            notices.budget_exhausted(budget, request.force.as_deref());
        }
        if let (Some(budget), None) = (&spent, &request.force) {
            return Err(AppError::Invalid(format!(
                "{app}'s error budget is spent: {} errors in {} requests over {}, {:.0} allowed by \
                 availability {}; wait for it to recover (`baton budget --app {app}`), or deploy \
                 anyway with --force \"REASON\" (kept in the deploy's history)",
                budget.errors,
                budget.requests,
                budget.window,
                budget.allowed_errors,
                budget.availability
            )));
        }
        let mut guard = self
            .claim(
                DeployRecord {
                    kind: "deploy".to_string(),
                    // The history keeps why lint errors were let through.
                    source: forced(
                        match &request.allow_unsafe_migrations {
                            Some(reason) => {
                                format!("{source} (unsafe migrations allowed: {reason})")
                            }
                            None => source.clone(),
                        },
                        request.force.as_deref(),
                        spent.is_some(),
                    ),
                    previous_release: previous.clone(),
                    ..new_record(&app, &request.user)
                },
                DeployKind::Deploy,
                progressive.is_some(),
            )
            .await?;
        let notices = notices.started(guard.id());
        guard.notices = Some(notices.clone());
        let record = AppRecord {
            name: app.clone(),
            config_json: match &stored {
                Some(stored) => stored.config_json.clone(),
                None => to_json(&config)?,
            },
            current_release: previous.clone(),
            updated_at_ms: now_ms(),
        };
        self.host
            .on_store(move |store| store.put_app(&record))
            .await
            .map_err(AppError::State)?;
        let plan = DeployPlan {
            app: app.clone(),
            source: request.source.clone(),
            build_steps: config.build.steps.clone(),
            before_deploy: config.hooks.before_deploy.clone(),
            before_traffic: config.hooks.before_traffic.clone(),
            after_deploy: config.hooks.after_deploy.clone(),
            smoke: !config.smoke.is_empty(),
            previous: previous.clone(),
            migrate: config.migrate.is_some(),
        };
        let (sender, events) = mpsc::unbounded_channel();
        let log = Arc::new(DeployLog::new(&self.deploy_log(&app, guard.id()), sender));
        let run = AppRun::new(
            Arc::clone(&self.host),
            config.clone(),
            previous,
            Arc::clone(&log),
            source,
            process_spec::run_marker(&app, guard.id()),
        )
        .allowing_unsafe_migrations(request.allow_unsafe_migrations.clone())
        .notifying(notices);
        let run = match progressive {
            Some((rollout, split)) => {
                let (control, commands) = mpsc::unbounded_channel();
                let (status, progress) = watch::channel(None);
                lock(&self.controls).insert(app.clone(), control);
                lock(&self.progress).insert(app.clone(), progress);
                run.with_rollout(rollout, split, commands, status)
            }
            None => run,
        };
        let manager = Arc::clone(self);
        tokio::spawn(async move {
            let result = baton_rollout::deploy(&run, &plan, &*log).await;
            lock(&manager.controls).remove(&run_app(&run));
            lock(&manager.progress).remove(&run_app(&run));
            let release = lock(&run.staged_release)
                .as_ref()
                .map(|(id, _)| id.clone())
                .unwrap_or_default();
            manager
                .record_end(
                    &guard,
                    &log,
                    release,
                    result.map(|report| (config, report)).map_err(|e| e.1.0),
                )
                .await;
            drop(guard);
        });
        Ok(events)
    }

    /// Starts a rollback to `request.to`, or to the release that served
    /// before the current one.
    pub async fn rollback(
        self: &Arc<Self>,
        app: &str,
        request: RollbackRequest,
    ) -> Result<mpsc::UnboundedReceiver<DeployEvent>, AppError> {
        let stored = self.stored_app(app).await?.ok_or_else(|| no_app(app))?;
        let current = stored.current_release.clone();
        let target = match &request.to {
            Some(target) => target.clone(),
            None => self.rollback_target(app, current.as_deref()).await?.ok_or_else(|| {
                AppError::Invalid(format!(
                    "{app} has no earlier release to roll back to; `baton releases --app {app}` lists them"
                ))
            })?,
        };
        if current.as_deref() == Some(target.as_str()) {
            return Err(AppError::Invalid(format!(
                "release {target} is already serving {app}"
            )));
        }
        let config = self.host.release_config(app, &target).await;
        let complete = match &config {
            Some(config) => AppRoot::new(&config.app.root).is_complete(&target),
            None => false,
        };
        let Some(config) = config.filter(|_| complete) else {
            let releases = self.releases(app).await?;
            let ids: Vec<String> = releases.into_iter().map(|release| release.id).collect();
            return Err(AppError::NotFound(format!(
                "{app} has no release {target} on disk; releases: {}",
                if ids.is_empty() {
                    "none".to_string()
                } else {
                    ids.join(", ")
                }
            )));
        };
        let mut guard = self
            .claim(
                DeployRecord {
                    kind: "rollback".to_string(),
                    release: target.clone(),
                    previous_release: current.clone(),
                    source: format!("rollback to {target}"),
                    ..new_record(app, &request.user)
                },
                DeployKind::Rollback,
                false,
            )
            .await?;
        // The app's latest config says where to announce, not the older
        // release's: a rollback is not refused over its notifications.
        let latest = serde_json::from_str(&stored.config_json).unwrap_or_else(|_| config.clone());
        let notices = RunNotices::lenient(
            &self.notifier,
            &latest,
            DeployKind::Rollback,
            &request.user,
            current.clone(),
        );
        guard.notices = Some(
            notices
                .with_release(Some(target.clone()))
                .started(guard.id()),
        );
        let plan = RollbackPlan {
            app: app.to_string(),
            target: target.clone(),
            previous: current.clone(),
        };
        let (sender, events) = mpsc::unbounded_channel();
        let log = Arc::new(DeployLog::new(&self.deploy_log(app, guard.id()), sender));
        let run = AppRun::new(
            Arc::clone(&self.host),
            config.clone(),
            current,
            Arc::clone(&log),
            format!("rollback to {target}"),
            process_spec::run_marker(app, guard.id()),
        );
        let manager = Arc::clone(self);
        tokio::spawn(async move {
            let result = baton_rollout::rollback(&run, &plan, &*log).await;
            manager
                .record_end(
                    &guard,
                    &log,
                    target,
                    result.map(|report| (config, report)).map_err(|e| e.1.0),
                )
                .await;
            drop(guard);
        });
        Ok(events)
    }

    async fn record_end(
        &self,
        guard: &RunGuard,
        log: &DeployLog,
        release: String,
        result: Result<(AppConfig, DeployReport), String>,
    ) {
        let mut record = guard.record.clone();
        record.report_json = result
            .as_ref()
            .ok()
            .and_then(|(_, report)| report.traffic.as_ref())
            .and_then(|traffic| serde_json::to_string(traffic).ok());
        let stages = serde_json::to_string(&log.stages()).unwrap_or_else(|_| "[]".to_string());
        let app = guard.app.clone();
        let now = now_ms();
        let succeeded = result.is_ok();
        let config_json = result
            .as_ref()
            .ok()
            .and_then(|(config, _)| serde_json::to_string(config).ok());
        if !release.is_empty() {
            record.release = release.clone();
        }
        record.finished_at_ms = Some(now);
        record.outcome = if succeeded { "succeeded" } else { "failed" }.to_string();
        record.reason = result.err();
        record.stages_json = stages;
        self.deploys.record(&record);
        if let Some(notices) = &guard.notices {
            notices.ended(&record);
        }
        let saved = self
            .host
            .on_store(move |store| {
                store.update_deploy(&record)?;
                if let Some(config_json) = config_json
                    && let Some(mut app_record) = store.app(&app)?
                {
                    app_record.config_json = config_json;
                    app_record.current_release = Some(release);
                    app_record.updated_at_ms = now;
                    store.put_app(&app_record)?;
                }
                Ok(())
            })
            .await;
        if let Err(error) = saved {
            tracing::error!(%error, "Recording the end of a deploy failed");
        }
    }

    async fn claim(
        self: &Arc<Self>,
        record: DeployRecord,
        kind: DeployKind,
        progressive: bool,
    ) -> Result<RunGuard, AppError> {
        let app = record.app.clone();
        {
            let mut running = lock(&self.running);
            if self.handing_over.load(Ordering::SeqCst) {
                return Err(AppError::Busy(
                    "the daemon is handing over to a new binary (baton upgrade); try again in a \
                     few seconds"
                        .to_string(),
                ));
            }
            if let Some(run) = running.get(&app) {
                return Err(AppError::Busy(format!(
                    "a {} of {app} is already running (#{} by {}, for {} s); \
                     wait for it to finish, then try again",
                    kind_name(run.kind),
                    run.id,
                    run.user,
                    run.started.elapsed().as_secs()
                )));
            }
            // Claimed before the history write so a second request cannot
            // slip in while the write waits on the disk.
            running.insert(
                app.clone(),
                Running {
                    id: 0,
                    kind,
                    progressive,
                    user: record.user.clone(),
                    started: Instant::now(),
                },
            );
        }
        let mut guard = RunGuard {
            manager: Arc::clone(self),
            app: app.clone(),
            record: record.clone(),
            notices: None,
        };
        let id = self
            .host
            .on_store(move |store| store.start_deploy(&record))
            .await
            .map_err(AppError::State)?;
        guard.record.id = id;
        if let Some(run) = lock(&self.running).get_mut(&app) {
            run.id = id;
        }
        Ok(guard)
    }

    /// Where run `id` of `app` logs its events, one JSON line each.
    pub(crate) fn deploy_log(&self, app: &str, id: i64) -> PathBuf {
        self.host
            .logs_dir
            .join(app)
            .join("deploys")
            .join(format!("{id}.log"))
    }

    async fn stored_app(&self, app: &str) -> Result<Option<AppRecord>, AppError> {
        let name = app.to_string();
        self.host
            .on_store(move |store| store.app(&name))
            .await
            .map_err(AppError::State)
    }

    /// The release `rollback` returns to: the one that served before the
    /// current one. A deploy the daemon's stop cut after its switch made
    /// the current release live too.
    async fn rollback_target(
        &self,
        app: &str,
        current: Option<&str>,
    ) -> Result<Option<String>, AppError> {
        let history = self.history(app, 100).await?;
        Ok(history
            .into_iter()
            .filter(|entry| {
                matches!(
                    entry.outcome,
                    DeployOutcomeKind::Succeeded | DeployOutcomeKind::Interrupted
                )
            })
            .find(|entry| Some(entry.release.as_str()) == current)
            .and_then(|entry| entry.previous_release))
    }

    /// Passes an operator's command to `app`'s running rollout.
    pub async fn rollout_command(
        &self,
        app: &str,
        command: RolloutCommand,
    ) -> Result<(), AppError> {
        // A deploy that has just been claimed sets up its command channel a
        // moment later: a command sent in between waits for it.
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        let control = loop {
            if let Some(control) = lock(&self.controls).get(app).cloned() {
                break control;
            }
            let starting = lock(&self.running)
                .get(app)
                .is_some_and(|run| run.progressive);
            if !starting || Instant::now() >= deadline {
                return Err(AppError::NotFound(format!(
                    "{app} has no progressive rollout running; `baton history --app {app}` shows how the last deploy ended"
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        let command = match command {
            RolloutCommand::Promote => Command::Promote,
            RolloutCommand::Abort => Command::Abort,
            RolloutCommand::Pause => Command::Pause,
            RolloutCommand::Resume => Command::Resume,
        };
        control
            .send(command)
            .map_err(|_| AppError::NotFound(format!("{app}'s rollout has just ended")))
    }

    /// Every app.
    pub async fn apps(&self) -> Result<Vec<AppInfo>, AppError> {
        let records = self
            .host
            .on_store(|store| store.apps())
            .await
            .map_err(AppError::State)?;
        let running = lock(&self.running);
        Ok(records
            .into_iter()
            .filter_map(|record| {
                let config: AppConfig = serde_json::from_str(&record.config_json).ok()?;
                Some(AppInfo {
                    running_deploy: running
                        .get(&record.name)
                        .map(|run| format!("{} #{}", kind_name(run.kind), run.id)),
                    name: record.name,
                    config,
                    current_release: record.current_release,
                })
            })
            .collect())
    }

    /// One app.
    pub async fn app(&self, app: &str) -> Result<AppInfo, AppError> {
        self.apps()
            .await?
            .into_iter()
            .find(|info| info.name == app)
            .ok_or_else(|| no_app(app))
    }

    /// `baton status`: the app, its running rollout, and each version's
    /// share and numbers.
    pub async fn status(&self, app: &str) -> Result<AppStatus, AppError> {
        let info = self.app(app).await?;
        let rollout = lock(&self.progress)
            .get(app)
            .and_then(|progress| progress.borrow().clone());
        let now = now_ms();
        let five_minutes = u64::try_from(app_status::FIVE_MINUTES.as_millis()).unwrap_or(u64::MAX);
        let (name, from, until) = (
            app.to_string(),
            minute_start(now.saturating_sub(five_minutes)),
            self.started_ms,
        );
        // What earlier daemons counted; this one's requests are in memory.
        let earlier = self
            .host
            .on_store(move |store| rollup_history::read(store, &name, from, until))
            .await
            .unwrap_or_else(|error| {
                tracing::warn!(app, %error, "Reading the minute rollups failed");
                Default::default()
            });
        let slo = info.config.slo.clone();
        let mut status = app_status::build(info, rollout, &self.host.routes, &earlier, now);
        if let Some(slo) = slo {
            status.budget = self.budget(app, &slo).await;
        }
        // The running one, if any, is newest; the one before it ended.
        status.last_deploy = self
            .history(app, 2)
            .await?
            .into_iter()
            .find(|entry| entry.outcome != DeployOutcomeKind::Running);
        Ok(status)
    }

    /// `app`'s error budget under `slo` now; `None` if the rollups cannot be
    /// read (logged).
    pub async fn budget(&self, app: &str, slo: &SloSection) -> Option<BudgetStatus> {
        let now = now_ms();
        let (name, from) = (app.to_string(), app_budget::first_minute(slo, now));
        let minutes = self
            .host
            .on_store(move |store| app_budget::read_minutes(store, &name, from))
            .await
            .inspect_err(|error| tracing::warn!(app, %error, "Reading the minute rollups failed"))
            .ok()?;
        let live = app_budget::this_minute(&self.host.routes, app, now);
        Some(app_budget::status(slo, &minutes, live, now))
    }

    /// `baton releases`.
    pub async fn releases(&self, app: &str) -> Result<Vec<ReleaseInfo>, AppError> {
        let stored = self.stored_app(app).await?.ok_or_else(|| no_app(app))?;
        let current = stored.current_release.clone();
        let rollback_target = self.rollback_target(app, current.as_deref()).await?;
        let name = app.to_string();
        let records = self
            .host
            .on_store(move |store| store.releases(&name))
            .await
            .map_err(AppError::State)?;
        let running = self.host.processes.releases_running(app);
        Ok(records
            .into_iter()
            .map(|record| ReleaseInfo {
                current: current.as_deref() == Some(record.id.as_str()),
                rollback_target: rollback_target.as_deref() == Some(record.id.as_str()),
                running: running.contains(&record.id),
                id: record.id,
                created_at_ms: record.created_at_ms,
                source: record.source,
                revision: record.revision,
            })
            .collect())
    }

    /// `baton history`, newest first.
    pub async fn history(&self, app: &str, limit: usize) -> Result<Vec<HistoryEntry>, AppError> {
        let name = app.to_string();
        let records = self
            .host
            .on_store(move |store| store.deploys(&name, limit))
            .await
            .map_err(AppError::State)?;
        Ok(records.into_iter().map(history_entry).collect())
    }

    /// `baton ps`.
    pub fn processes(&self, app: Option<&str>) -> Vec<ProcessInfo> {
        self.host.processes.list(app)
    }

    /// The daemon's parts, for views (the dashboard) that read the store
    /// and the routes' live numbers beside what the commands answer.
    pub(crate) fn host(&self) -> &AppHost {
        &self.host
    }

    /// Daemon shutdown: the apps keep running for the next daemon.
    pub fn detach(&self) {
        self.host.processes.detach_all();
    }
}

impl RunGuard {
    fn id(&self) -> i64 {
        self.record.id
    }
}

fn new_record(app: &str, user: &str) -> DeployRecord {
    DeployRecord {
        id: 0,
        app: app.to_string(),
        kind: String::new(),
        release: String::new(),
        previous_release: None,
        started_at_ms: now_ms(),
        finished_at_ms: None,
        user: user.to_string(),
        source: String::new(),
        outcome: "running".to_string(),
        reason: None,
        stages_json: "[]".to_string(),
        report_json: None,
    }
}

/// The progressive rollout a deploy runs, if its config (or `--strategy`)
/// asks for more than one swap.
fn plan_of(
    config: &AppConfig,
    strategy: Option<&str>,
) -> Result<Option<(RolloutPlan, SplitOptions)>, AppError> {
    let plan = RolloutPlan::from_config(&config.rollout, strategy).map_err(AppError::Invalid)?;
    let one_swap =
        matches!(plan.strategy, Strategy::Replace) && plan.bake.is_zero() && plan.shadow.is_none();
    if one_swap {
        return Ok(None);
    }
    let shadow_methods = config
        .rollout
        .shadow_methods
        .iter()
        .map(|method| {
            http::Method::from_bytes(method.as_str().as_bytes()).map_err(|_| {
                AppError::Invalid(format!(
                    "[rollout] shadow_methods: {:?} is not an HTTP method",
                    method.as_str()
                ))
            })
        })
        .collect::<Result<_, _>>()?;
    let split = SplitOptions {
        sticky: config.rollout.sticky,
        override_header: config.rollout.override_header,
        shadow_methods,
    };
    Ok(Some((plan, split)))
}

fn run_app(run: &AppRun) -> String {
    run.app_name().to_string()
}

fn history_entry(record: DeployRecord) -> HistoryEntry {
    HistoryEntry {
        id: record.id,
        kind: if record.kind == "rollback" {
            DeployKind::Rollback
        } else {
            DeployKind::Deploy
        },
        outcome: match record.outcome.as_str() {
            "succeeded" => DeployOutcomeKind::Succeeded,
            "failed" => DeployOutcomeKind::Failed,
            "interrupted" => DeployOutcomeKind::Interrupted,
            _ => DeployOutcomeKind::Running,
        },
        duration_ms: record
            .finished_at_ms
            .map(|finished| finished.saturating_sub(record.started_at_ms)),
        stages: serde_json::from_str(&record.stages_json).unwrap_or_default(),
        traffic: record
            .report_json
            .as_deref()
            .and_then(|json| serde_json::from_str(json).ok()),
        app: record.app,
        release: record.release,
        previous_release: record.previous_release,
        started_at_ms: record.started_at_ms,
        user: record.user,
        source: record.source,
        reason: record.reason,
    }
}

fn kind_name(kind: DeployKind) -> &'static str {
    match kind {
        DeployKind::Deploy => "deploy",
        DeployKind::Rollback => "rollback",
    }
}

fn no_app(app: &str) -> AppError {
    AppError::NotFound(format!(
        "no app named {app:?} has been deployed; run `baton deploy` with its baton.toml first"
    ))
}

fn to_json(config: &AppConfig) -> Result<String, AppError> {
    serde_json::to_string(config).map_err(|error| AppError::Invalid(error.to_string()))
}

/// A deploy's source as history keeps it: with why it was `force`d, and
/// whether the error budget was spent when it was.
fn forced(source: String, force: Option<&str>, spent: bool) -> String {
    match (force, spent) {
        (Some(reason), true) => format!("{source} (error budget spent; forced: {reason})"),
        (Some(reason), false) => format!("{source} (forced: {reason})"),
        (None, _) => source,
    }
}

fn now_ms() -> u64 {
    unix_ms(SystemTime::now())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
