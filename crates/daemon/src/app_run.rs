//! One deploy or rollback of one app: the effects the pipeline asks for,
//! done with real release directories, processes and routes.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use baton_api::{AppConfig, DeployEvent, DeployRoute, DeploySource, PostDeployReport};
use baton_release::{AppRoot, ReleaseMeta, Source};
use baton_rollout::{
    Booted, Command, Effects, EventSink, Hook, MigrationPhase, RolloutPlan, StepError, Switched,
};
use baton_state::{ProcessRecord, ReleaseRecord};
use tokio::time::Instant;

use crate::app_host::{AppHost, blocking};
use crate::app_migrations::{self, AppMigrations};
use crate::deploy_log::DeployLog;
use crate::external_metric::ExternalSource;
use crate::post_deploy_report;
use crate::process_spec::{self, Slot, WEB};
use crate::process_table::{Entry, unix_ms};
use crate::rollout_controller::{self, SplitOptions, StatusBoard};
use crate::route_manager::StagedRoute;
use crate::run_notices::RunNotices;

/// Unexpected exits of one new process that count as a crash loop.
pub const CRASH_LOOP_EXITS: u32 = 3;

/// How long new workers are watched for a crash loop before the deploy
/// goes on.
const WORKER_SETTLE: Duration = Duration::from_secs(2);

/// Lines of a process's output shown when it fails.
const TAIL_LINES: usize = 20;

/// A progressive rollout's inputs.
struct Progressive {
    plan: RolloutPlan,
    split: SplitOptions,
    commands: tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<Command>>,
    status: StatusBoard,
}

/// The effects of one run.
pub struct AppRun {
    /// Shared daemon parts.
    pub host: Arc<AppHost>,
    /// The config of the release going live.
    pub config: AppConfig,
    /// The release serving before this run.
    pub previous: Option<String>,
    /// Events and history.
    pub log: Arc<DeployLog>,
    /// Where the code came from, for the release's record.
    pub source: String,
    /// Carried by build steps and hooks, so a restart after a crash finds
    /// and stops the ones this run left.
    run_marker: String,
    /// A progressive rollout's plan, its split options and the operator's
    /// commands; `None` switches in one swap.
    rollout: Option<Progressive>,
    /// The release this run staged, once it has one.
    pub staged_release: Mutex<Option<(String, String)>>,
    staged_route: tokio::sync::Mutex<Option<StagedRoute>>,
    /// `--allow-unsafe-migrations`: why migration lint errors may ship.
    unsafe_migrations: Option<String>,
    /// Where a guardrail breach is announced.
    notices: Option<RunNotices>,
}

impl AppRun {
    /// A run of `config`'s app.
    pub fn new(
        host: Arc<AppHost>,
        config: AppConfig,
        previous: Option<String>,
        log: Arc<DeployLog>,
        source: String,
        run_marker: String,
    ) -> Self {
        AppRun {
            host,
            config,
            previous,
            log,
            source,
            run_marker,
            staged_release: Mutex::new(None),
            staged_route: tokio::sync::Mutex::new(None),
            rollout: None,
            unsafe_migrations: None,
            notices: None,
        }
    }

    /// Announces a guardrail breach of its rollout with `notices`.
    pub fn notifying(mut self, notices: RunNotices) -> Self {
        self.notices = Some(notices);
        self
    }

    /// Lets migration lint errors through the preflight, for `reason`.
    pub fn allowing_unsafe_migrations(mut self, reason: Option<String>) -> Self {
        self.unsafe_migrations = reason;
        self
    }

    /// Moves traffic to the new release progressively, by `plan`, and
    /// keeps `status` up to date while it does.
    pub fn with_rollout(
        mut self,
        plan: RolloutPlan,
        split: SplitOptions,
        commands: tokio::sync::mpsc::UnboundedReceiver<Command>,
        status: StatusBoard,
    ) -> Self {
        self.rollout = Some(Progressive {
            plan,
            split,
            commands: tokio::sync::Mutex::new(commands),
            status,
        });
        self
    }

    fn app(&self) -> &str {
        self.config.name()
    }

    /// The app this run deploys.
    pub fn app_name(&self) -> &str {
        self.app()
    }

    fn root(&self) -> AppRoot {
        AppRoot::new(&self.config.app.root)
    }

    /// The config `release` runs with: this run's for its own release,
    /// the stored one for others.
    async fn config_of(&self, release: &str) -> AppConfig {
        let ours = lock(&self.staged_release)
            .as_ref()
            .is_some_and(|(id, _)| id == release);
        if ours {
            return self.config.clone();
        }
        self.host
            .release_config(self.app(), release)
            .await
            .unwrap_or_else(|| self.config.clone())
    }

    async fn run_command(
        &self,
        stage: &str,
        release: &str,
        command: &str,
        timeout: Duration,
    ) -> Result<(), StepError> {
        let env = self.command_env(release, stage)?;
        let dir = self.root().release_dir(release);
        let output = self.output(stage);
        baton_release::run_command(command, &dir, &env, timeout, move |line: &str| {
            output(line.to_string());
        })
        .await
        .map_err(|error| StepError::new(error.to_string()))
    }

    /// The environment of `release`'s build steps, hooks and migrations.
    fn command_env(&self, release: &str, stage: &str) -> Result<Vec<(String, String)>, StepError> {
        process_spec::command_env(
            &self.config,
            release,
            self.previous.as_deref(),
            stage,
            &self.run_marker,
        )
        .map_err(StepError::new)
    }

    /// Sends `stage`'s lines to the deploy's event stream.
    fn output(&self, stage: &str) -> impl Fn(String) + Send + Sync + use<> {
        let log = Arc::clone(&self.log);
        let stage = stage.to_string();
        move |line: String| {
            log.emit(DeployEvent::Output {
                stage: stage.clone(),
                line,
            });
        }
    }

    /// `release`'s migrations and the database its environment names.
    fn migrations<'a>(
        &self,
        section: &'a baton_api::MigrateSection,
        release: &str,
        stage: &str,
    ) -> Result<AppMigrations<'a>, StepError> {
        Ok(AppMigrations {
            section,
            env: self.command_env(release, stage)?,
            env_file: self.root().env_file(),
        })
    }

    /// Starts the web processes of `release` on fresh ports.
    async fn spawn_web(&self, config: &AppConfig, release: &str) -> Result<Vec<Entry>, StepError> {
        let mut started = Vec::new();
        for index in 1..=config.web.processes.get() {
            let port = free_port().map_err(StepError::new)?;
            match self
                .spawn_slot(config, release, WEB, index, Some(port))
                .await
            {
                Ok(entry) => started.push(entry),
                Err(error) => {
                    for entry in &started {
                        self.host.processes.stop(&entry.record.marker).await;
                    }
                    return Err(error);
                }
            }
        }
        Ok(started)
    }

    async fn spawn_slot(
        &self,
        config: &AppConfig,
        release: &str,
        role: &str,
        index: u32,
        port: Option<u16>,
    ) -> Result<Entry, StepError> {
        spawn_slot(&self.host, config, release, role, index, port)
            .await
            .map_err(StepError::new)
    }

    /// Stages a route to `release`'s running web processes (a warm
    /// version, or the previous one when a deploy is undone).
    async fn stage_route(
        &self,
        config: &AppConfig,
        release: &str,
        web: &[Entry],
        warm: bool,
    ) -> Result<StagedRoute, StepError> {
        let request = route_request(config, release, web, warm);
        let handles: Vec<Entry> = web.to_vec();
        let abort = crash_loop(handles);
        self.host
            .routes
            .stage(self.app(), request, abort)
            .await
            .map_err(|error| {
                let mut message = format!(
                    "release {release} never became healthy: {error}. \
                     The previous version still serves."
                );
                // The process that crashed most tells the most.
                let telling = web
                    .iter()
                    .max_by_key(|entry| *entry.handle.exits().borrow());
                if let Some(entry) = telling {
                    message.push_str(&output_tail(entry));
                }
                StepError::new(message)
            })
    }
}

impl Effects for AppRun {
    async fn stage(&self, source: &DeploySource) -> Result<String, StepError> {
        let root = self.root();
        let source = match source {
            DeploySource::Dir { path } => Source::Dir(path.clone()),
            DeploySource::Git { repo, reference } => Source::Git {
                repo: repo.clone(),
                reference: reference.clone(),
            },
        };
        let staged = blocking(move || {
            root.prepare().map_err(|error| error.to_string())?;
            baton_release::stage(&root, &source, SystemTime::now())
                .map_err(|error| error.to_string())
        })
        .await
        .map_err(StepError::new)?;
        *lock(&self.staged_release) = Some((staged.id.clone(), staged.revision.clone()));
        Ok(staged.id)
    }

    async fn link(&self, release: &str) -> Result<String, StepError> {
        let root = self.root();
        let shared: Vec<std::path::PathBuf> = self
            .config
            .app
            .shared
            .iter()
            .map(|path| path.as_path().to_path_buf())
            .collect();
        let asset_dir = self
            .config
            .app
            .asset_dir
            .as_ref()
            .map(|dir| dir.as_path().to_path_buf());
        let keep = self.config.app.keep_releases.get() as usize;
        let release = release.to_string();
        blocking(move || {
            let dir = root.release_dir(&release);
            baton_release::link_shared(&root, &dir, &shared).map_err(|error| error.to_string())?;
            let mut detail = format!("{} shared paths linked", shared.len());
            if let Some(asset_dir) = asset_dir {
                let mut previous = root.releases().map_err(|error| error.to_string())?;
                previous.retain(|id| *id != release);
                previous.reverse();
                previous.truncate(keep);
                let linked = baton_release::link_assets(&root, &dir, &asset_dir, &previous)
                    .map_err(|error| error.to_string())?;
                detail.push_str(&format!(", {linked} assets kept from earlier releases"));
            }
            Ok(detail)
        })
        .await
        .map_err(StepError::new)
    }

    async fn build(&self, release: &str, step: &str) -> Result<(), StepError> {
        self.run_command("build", release, step, self.config.build.timeout.get())
            .await
            .map_err(|error| {
                StepError::new(format!(
                    "{error}\nNothing was started; the running version still serves."
                ))
            })
    }

    async fn hook(&self, release: &str, hook: Hook, command: &str) -> Result<(), StepError> {
        let stage = match hook {
            Hook::BeforeDeploy => "before_deploy",
            Hook::BeforeTraffic => "before_traffic",
            Hook::AfterDeploy => "after_deploy",
        };
        self.run_command(stage, release, command, self.config.hooks.timeout.get())
            .await
    }

    async fn seal(&self, release: &str) -> Result<(), StepError> {
        let revision = lock(&self.staged_release)
            .as_ref()
            .map(|(_, revision)| revision.clone())
            .unwrap_or_default();
        let created_at_ms = unix_ms(SystemTime::now());
        let meta = ReleaseMeta {
            id: release.to_string(),
            created_at_ms,
            source: self.source.clone(),
            revision: revision.clone(),
        };
        let root = self.root();
        blocking(move || root.mark_complete(&meta).map_err(|error| error.to_string()))
            .await
            .map_err(StepError::new)?;
        let record = ReleaseRecord {
            app: self.app().to_string(),
            id: release.to_string(),
            created_at_ms,
            source: self.source.clone(),
            revision,
            config_json: serde_json::to_string(&self.config)
                .map_err(|error| StepError::new(error.to_string()))?,
        };
        self.host
            .on_store(move |store| store.put_release(&record))
            .await
            .map_err(StepError::new)
    }

    async fn boot(&self, release: &str) -> Result<Booted, StepError> {
        let config = self.config_of(release).await;
        let started = Instant::now();
        let running: Vec<Entry> = self
            .host
            .processes
            .select(self.app(), Some(release), Some(WEB))
            .into_iter()
            .filter(|entry| entry.handle.pid().is_some())
            .collect();
        let warm = running.len() == config.web.processes.get() as usize;
        let web = if warm {
            for entry in &running {
                self.host
                    .processes
                    .set_state(&entry.record.marker, "running", None);
            }
            running
        } else {
            // Some of its processes survived, not all: start the version
            // whole rather than mix instances of two lifetimes.
            for entry in &running {
                self.host.processes.stop(&entry.record.marker).await;
            }
            self.spawn_web(&config, release).await?
        };
        let staged = self.stage_route(&config, release, &web, warm).await?;
        let ports: Vec<String> = web
            .iter()
            .filter_map(|entry| entry.record.port)
            .map(|port| format!(":{port}"))
            .collect();
        let detail = format!(
            "{} {} web process{} on {}, healthy after {} ms",
            web.len(),
            if warm { "warm" } else { "new" },
            if web.len() == 1 { "" } else { "es" },
            ports.join(", "),
            staged.healthy_after().as_millis()
        );
        *self.staged_route.lock().await = Some(staged);
        Ok(Booted {
            warm,
            boot_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            detail,
        })
    }

    async fn smoke(&self, release: &str) -> Result<String, StepError> {
        let ports: Vec<u16> = self
            .host
            .processes
            .select(self.app(), Some(release), Some(WEB))
            .iter()
            .filter_map(|entry| entry.record.port)
            .collect();
        crate::smoke_check::run(&self.config.smoke, &ports)
            .await
            .map_err(StepError::new)
    }

    async fn switch_traffic(&self, release: Option<&str>) -> Result<Switched, StepError> {
        let Some(release) = release else {
            return match self.host.routes.remove(self.app()).await {
                Ok(outcome) => Ok(switched(&outcome)),
                Err(crate::route_manager::RouteError::NotFound(_)) => Ok(Switched::default()),
                Err(error) => Err(StepError::new(error.to_string())),
            };
        };
        let staged = {
            let mut slot = self.staged_route.lock().await;
            match slot.take() {
                Some(staged) if staged.label() == release => Some(staged),
                _ => None,
            }
        };
        let staged = match staged {
            Some(staged) => staged,
            None => {
                let config = self.config_of(release).await;
                let web = self
                    .host
                    .processes
                    .select(self.app(), Some(release), Some(WEB));
                if web.is_empty() {
                    return Err(StepError::new(format!(
                        "release {release} has no web processes running to take the traffic"
                    )));
                }
                self.stage_route(&config, release, &web, true).await?
            }
        };
        // A progressive rollout needs a stable version to split with; a
        // first deploy has none and takes the traffic in one swap.
        let has_stable = self
            .host
            .routes
            .list()
            .iter()
            .any(|route| route.service == self.app());
        if let Some(progressive) = &self.rollout
            && has_stable
        {
            let mut commands = progressive.commands.lock().await;
            let inputs = rollout_controller::Inputs {
                plan: &progressive.plan,
                split: progressive.split.clone(),
                commands: &mut commands,
                status: &progressive.status,
                sources: ExternalSource::by_guardrail(&self.config.rollout),
                notices: self.notices.clone().map(|notices| {
                    notices.with_release(
                        lock(&self.staged_release)
                            .as_ref()
                            .map(|(id, _)| id.clone()),
                    )
                }),
            };
            return rollout_controller::run(
                &self.host.routes,
                self.app(),
                staged,
                inputs,
                &*self.log,
            )
            .await
            .map_err(StepError::new);
        }
        let outcome = self
            .host
            .routes
            .install(staged)
            .await
            .map_err(|error| StepError::new(error.to_string()))?;
        Ok(switched(&outcome))
    }

    async fn switch_current(&self, release: Option<&str>) -> Result<(), StepError> {
        let root = self.root();
        let id = release.map(str::to_string);
        let target = id.clone();
        blocking(move || match target {
            Some(id) => root.switch_current(&id).map_err(|error| error.to_string()),
            None => match std::fs::remove_file(root.current_link()) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(format!(
                    "cannot remove {}: {error}",
                    root.current_link().display()
                )),
                _ => Ok(()),
            },
        })
        .await
        .map_err(StepError::new)?;
        let app = self.app().to_string();
        let now = unix_ms(SystemTime::now());
        self.host
            .on_store(move |store| store.set_current_release(&app, id.as_deref(), now))
            .await
            .map_err(StepError::new)
    }

    async fn restart_workers(&self, from: Option<&str>, to: &str) -> Result<String, StepError> {
        let config = self.config_of(to).await;
        let old: Vec<Entry> = match from {
            Some(from) if from != to => self
                .host
                .processes
                .select(self.app(), Some(from), None)
                .into_iter()
                .filter(|entry| entry.record.role != WEB)
                .collect(),
            _ => Vec::new(),
        };
        let mut started = Vec::new();
        let mut finishing = 0;
        for worker in &config.workers {
            let name = worker.name.as_str();
            let previous: Vec<&Entry> = old
                .iter()
                .filter(|entry| entry.record.role == name)
                .collect();
            if worker.singleton {
                // Never two at once: the old one finishes its job first.
                for entry in previous {
                    self.host.processes.stop(&entry.record.marker).await;
                }
            } else {
                finishing += previous.len();
                for entry in previous {
                    stop_in_background(&self.host, &entry.record.marker);
                }
            }
            for index in 1..=worker.processes.get() {
                started.push(self.spawn_slot(&config, to, name, index, None).await?);
            }
        }
        // Workers the new release no longer has.
        for entry in &old {
            let kept = config
                .workers
                .iter()
                .any(|worker| worker.name.as_str() == entry.record.role);
            if !kept {
                finishing += 1;
                stop_in_background(&self.host, &entry.record.marker);
            }
        }
        if started.is_empty() {
            return Ok(if finishing == 0 {
                "no workers".to_string()
            } else {
                format!("{finishing} old workers finishing their jobs")
            });
        }
        // A release that served before (a rollback, or the previous release
        // taking back a failed deploy) ran its workers already: only a new
        // release's workers are watched for a crash loop.
        let fresh = lock(&self.staged_release)
            .as_ref()
            .is_some_and(|(id, _)| id == to);
        if !fresh {
            return Ok(format!(
                "{} workers started on {to}, {finishing} old workers finishing their jobs",
                started.len()
            ));
        }
        let settled = tokio::time::timeout(WORKER_SETTLE, crash_loop(started.clone())).await;
        if let Ok(reason) = settled {
            let crashed = started
                .iter()
                .find(|entry| *entry.handle.exits().borrow() >= CRASH_LOOP_EXITS)
                .map(output_tail)
                .unwrap_or_default();
            return Err(StepError::new(format!("{reason}{crashed}")));
        }
        Ok(format!(
            "{} workers started on {to}, {finishing} old workers finishing their jobs",
            started.len()
        ))
    }

    async fn retire(&self, release: &str) -> String {
        let config = self.config_of(release).await;
        let keep_warm = config.web.keep_warm.get();
        let web = self
            .host
            .processes
            .select(self.app(), Some(release), Some(WEB));
        // Only the version just replaced stays warm: older warm versions are
        // no rollback's default target any more.
        for entry in self.host.processes.select(self.app(), None, Some(WEB)) {
            if entry.record.release != release && entry.record.state == "warm" {
                stop_in_background(&self.host, &entry.record.marker);
            }
        }
        let until = SystemTime::now() + keep_warm;
        for entry in &web {
            self.host
                .processes
                .set_state(&entry.record.marker, "warm", Some(until));
        }
        let markers: Vec<String> = web
            .iter()
            .map(|entry| entry.record.marker.clone())
            .collect();
        stop_when_cold(&self.host, markers, keep_warm);
        if keep_warm.is_zero() {
            format!("release {release} stopping")
        } else {
            format!(
                "release {release} kept warm for {} for an instant rollback",
                humantime_short(keep_warm)
            )
        }
    }

    async fn discard(&self, release: &str, delete: bool) {
        drop(self.staged_route.lock().await.take());
        let entries = self.host.processes.select(self.app(), Some(release), None);
        let stops = entries
            .iter()
            .map(|entry| self.host.processes.stop(&entry.record.marker));
        futures_util::future::join_all(stops).await;
        if delete {
            let root = self.root();
            let id = release.to_string();
            let removed =
                blocking(move || root.remove_release(&id).map_err(|e| e.to_string())).await;
            if let Err(error) = removed {
                tracing::warn!(release, %error, "Cannot delete a failed release");
            }
            let (app, id) = (self.app().to_string(), release.to_string());
            let _ = self
                .host
                .on_store(move |store| store.remove_release(&app, &id))
                .await;
        }
    }

    async fn lint_migrations(
        &self,
        source: &DeploySource,
        release: Option<&str>,
    ) -> Result<String, StepError> {
        let Some(section) = &self.config.migrate else {
            return Ok("no [migrate] in baton.toml".to_string());
        };
        let base = match (release, source) {
            (Some(release), _) => self.root().release_dir(release),
            (None, DeploySource::Dir { path }) => path.clone(),
            (None, DeploySource::Git { .. }) => {
                return Err(StepError::new(
                    "a git source's migrations can only be linted once it is checked out",
                ));
            }
        };
        let output = self.output("preflight");
        app_migrations::lint(section, &base, self.unsafe_migrations.as_deref(), &output).await
    }

    async fn pending_migrations(
        &self,
        release: &str,
        phase: MigrationPhase,
    ) -> Result<usize, StepError> {
        let Some(section) = &self.config.migrate else {
            return Ok(0);
        };
        let stage = format!("migrate_{}", phase.name());
        self.migrations(section, release, &stage)?
            .pending(&self.root().release_dir(release), phase)
            .await
    }

    async fn migrate(&self, release: &str, phase: MigrationPhase) -> Result<String, StepError> {
        let Some(section) = &self.config.migrate else {
            return Ok("no [migrate] in baton.toml".to_string());
        };
        let stage = match phase {
            MigrationPhase::Expand => "migrate_expand",
            MigrationPhase::Contract => "migrate_contract",
        };
        let output = self.output(stage);
        let migrated = self
            .migrations(section, release, stage)?
            .run(&self.root().release_dir(release), phase, &output)
            .await;
        match (migrated, phase) {
            (Err(error), MigrationPhase::Expand) => Err(StepError::new(format!(
                "{error}\nThe new version was not started; the running version still serves."
            ))),
            (result, _) => result,
        }
    }

    async fn stop_others(&self, release: &str) -> Result<String, StepError> {
        let others: Vec<Entry> = self
            .host
            .processes
            .select(self.app(), None, None)
            .into_iter()
            .filter(|entry| entry.record.release != release)
            .collect();
        if others.is_empty() {
            return Ok("no process of an older release runs".to_string());
        }
        let mut releases: Vec<&str> = others
            .iter()
            .map(|entry| entry.record.release.as_str())
            .collect();
        releases.sort_unstable();
        releases.dedup();
        let pids: Vec<String> = others
            .iter()
            .filter_map(|entry| entry.handle.pid())
            .map(|pid| pid.to_string())
            .collect();
        let stops = others
            .iter()
            .map(|entry| self.host.processes.stop(&entry.record.marker));
        futures_util::future::join_all(stops).await;
        Ok(format!(
            "{} process{} of release {} exited (pid {}); a rollback to it boots it again",
            others.len(),
            if others.len() == 1 { "" } else { "es" },
            releases.join(", "),
            pids.join(", ")
        ))
    }

    async fn traffic_report(&self, release: &str) -> Option<PostDeployReport> {
        post_deploy_report::read(&self.host, self.app(), release, unix_ms(SystemTime::now())).await
    }

    async fn prune(&self) -> Result<Vec<String>, StepError> {
        let root = self.root();
        let keep = self.config.app.keep_releases.get() as usize;
        let rollback_target = self.previous.clone();
        let running: std::collections::HashSet<String> = self
            .host
            .processes
            .releases_running(self.app())
            .into_iter()
            .collect();
        let logs = self.host.logs_dir.join(self.app());
        let deleted = blocking(move || {
            let releases = root.releases().map_err(|error| error.to_string())?;
            let current = root.current().map_err(|error| error.to_string())?;
            let doomed = baton_release::retention(
                &releases,
                keep,
                current.as_deref(),
                rollback_target.as_deref(),
                &running,
            );
            for id in &doomed {
                root.remove_release(id).map_err(|error| error.to_string())?;
                let _ = std::fs::remove_dir_all(logs.join(id));
            }
            let _ = root.remove_incomplete();
            Ok(doomed)
        })
        .await
        .map_err(StepError::new)?;
        for id in &deleted {
            let (app, id) = (self.app().to_string(), id.clone());
            let _ = self
                .host
                .on_store(move |store| store.remove_release(&app, &id))
                .await;
        }
        Ok(deleted)
    }
}

/// Starts one process of `release` in slot (`role`, `index`).
pub async fn spawn_slot(
    host: &AppHost,
    config: &AppConfig,
    release: &str,
    role: &str,
    index: u32,
    port: Option<u16>,
) -> Result<Entry, String> {
    let marker = uuid::Uuid::new_v4().simple().to_string();
    let slot = Slot {
        config,
        release,
        role,
        index,
        port,
        marker: &marker,
    };
    let spec = process_spec::spec(&slot, &host.logs_dir, host.rotation)?;
    let record = ProcessRecord {
        marker: marker.clone(),
        app: config.name().to_string(),
        release: release.to_string(),
        role: role.to_string(),
        index,
        pid: None,
        start_time: None,
        port,
        started_at_ms: unix_ms(SystemTime::now()),
        restarts: 0,
        state: "starting".to_string(),
        stop_after_ms: None,
        log_file: spec.log_file.display().to_string(),
    };
    host.processes.spawn(record, spec).await.map_err(|error| {
        format!(
            "cannot start {role} process {index} of release {release}: {error}; \
             check [web] command / [[workers]] command in baton.toml"
        )
    })
}

/// Stops processes once `keep_warm` has passed, unless they went back to
/// serving meanwhile.
pub fn stop_when_cold(host: &Arc<AppHost>, markers: Vec<String>, keep_warm: Duration) {
    let host = Arc::clone(host);
    tokio::spawn(async move {
        tokio::time::sleep(keep_warm).await;
        // A process that served again and was retired again since carries a
        // later stop time: that retirement's own timer stops it.
        let due = unix_ms(SystemTime::now()) + 100;
        let cold: Vec<String> = markers
            .into_iter()
            .filter(|marker| {
                host.processes.record(marker).is_some_and(|record| {
                    record.state == "warm" && record.stop_after_ms.is_some_and(|until| until <= due)
                })
            })
            .collect();
        let stops = cold.iter().map(|marker| host.processes.stop(marker));
        futures_util::future::join_all(stops).await;
    });
}

/// Stops a process without waiting for it (a worker may take its whole
/// stop timeout to finish its job).
pub fn stop_in_background(host: &Arc<AppHost>, marker: &str) {
    host.processes.set_state(marker, "stopping", None);
    let host = Arc::clone(host);
    let marker = marker.to_string();
    tokio::spawn(async move { host.processes.stop(&marker).await });
}

/// Resolves with a reason once one of `entries` has crashed
/// [`CRASH_LOOP_EXITS`] times.
async fn crash_loop(entries: Vec<Entry>) -> String {
    let waits = entries.iter().map(|entry| {
        let mut exits = entry.handle.exits();
        let entry = entry.clone();
        Box::pin(async move {
            let _ = exits.wait_for(|count| *count >= CRASH_LOOP_EXITS).await;
            format!(
                "{} process {} of release {} crashed {} times ({})",
                entry.record.role,
                entry.record.index,
                entry.record.release,
                CRASH_LOOP_EXITS,
                entry
                    .handle
                    .last_exit()
                    .unwrap_or_else(|| "no exit status".to_string())
            )
        })
    });
    let (reason, _, _) = futures_util::future::select_all(waits).await;
    reason
}

fn output_tail(entry: &Entry) -> String {
    let path = std::path::Path::new(&entry.record.log_file);
    let lines = baton_supervisor::tail_lines(path, TAIL_LINES);
    if lines.is_empty() {
        return format!("\n(no output in {})", path.display());
    }
    format!(
        "\nLast {} lines of its output ({}):\n{}",
        lines.len(),
        path.display(),
        lines.join("\n")
    )
}

fn route_request(config: &AppConfig, release: &str, web: &[Entry], warm: bool) -> DeployRoute {
    DeployRoute {
        targets: web
            .iter()
            .filter_map(|entry| entry.record.port)
            .map(|port| format!("127.0.0.1:{port}"))
            .collect(),
        hosts: config.app.hosts.clone(),
        path_prefix: config.app.path_prefix.as_str().to_string(),
        version: Some(release.to_string()),
        health_path: config.web.health_path.as_str().to_string(),
        health_interval_ms: millis(config.web.health_interval.get()),
        // Warm processes passed their checks before; one answer confirms
        // they still do.
        healthy_after: if warm {
            1
        } else {
            config.web.healthy_after.get()
        },
        health_timeout_ms: millis(config.web.health_timeout.get()),
        deploy_timeout_ms: millis(config.web.boot_timeout.get()),
        drain_timeout_ms: millis(config.web.drain_timeout.get()),
        balance: baton_api::Balance::LeastInFlight,
        max_request_body: None,
        inject_flags: config.flags.inject.then(|| baton_api::FlagInjection {
            targeting_key: config.flags.targeting_key.clone(),
        }),
    }
}

fn switched(outcome: &baton_api::DeployOutcome) -> Switched {
    Switched {
        drain_ms: outcome.drain_ms,
        requests_cut: outcome.requests_cut_at_drain_timeout,
        upgraded_closed: outcome.upgraded_connections_closed,
    }
}

/// A port nobody listens on now, for a new web process.
pub fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|error| format!("cannot find a free port for a web process: {error}"))
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

fn humantime_short(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
