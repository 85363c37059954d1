//! The order of a deploy's and a rollback's stages, and what each failure
//! undoes. Up to the traffic switch a failure leaves the old version
//! serving and untouched; after it, the old version (still running) gets
//! the traffic back before the error is reported.

use baton_api::{DeployEvent, DeployReport, DeploySource, StageTiming};
use tokio::time::Instant;

use crate::{Booted, Effects, EventSink, Hook, MigrationPhase, Stage, StepError, Switched};

/// What a deploy is asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeployPlan {
    /// The app.
    pub app: String,
    /// The code.
    pub source: DeploySource,
    /// Build steps, in order.
    pub build_steps: Vec<String>,
    /// `[hooks] before_deploy`.
    pub before_deploy: Option<String>,
    /// `[hooks] before_traffic`.
    pub before_traffic: Option<String>,
    /// `[hooks] after_deploy`.
    pub after_deploy: Option<String>,
    /// Whether there are `[[smoke]]` checks to run.
    pub smoke: bool,
    /// The release serving now, if any.
    pub previous: Option<String>,
    /// Whether the app's migrations are baton's (`[migrate]`): linted in
    /// the preflight, expanded before the boot, contracted once the old
    /// version is gone.
    pub migrate: bool,
}

/// What a rollback is asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RollbackPlan {
    /// The app.
    pub app: String,
    /// The release to return to.
    pub target: String,
    /// The release serving now.
    pub previous: Option<String>,
}

/// Runs a deploy to the end or to a clean failure. Emits every stage and,
/// last, `Succeeded` or `Failed`; returns the same outcome.
pub async fn deploy<E: Effects, S: EventSink>(
    effects: &E,
    plan: &DeployPlan,
    sink: &S,
) -> Result<DeployReport, (String, StepError)> {
    let mut run = Run::new(sink, &plan.app, plan.previous.clone());
    let result = deploy_stages(effects, plan, &mut run).await;
    run.finish_reporting(effects, result).await
}

/// Returns to an earlier release: no staging, no build; health-gated, same
/// drain rules. Processes kept warm make it a pure traffic switch.
pub async fn rollback<E: Effects, S: EventSink>(
    effects: &E,
    plan: &RollbackPlan,
    sink: &S,
) -> Result<DeployReport, (String, StepError)> {
    let mut run = Run::new(sink, &plan.app, plan.previous.clone());
    run.report.release = plan.target.clone();
    let result = go_live(
        effects,
        &plan.target,
        plan.previous.as_deref(),
        None,
        false,
        false,
        &mut run,
    )
    .await;
    run.finish_reporting(effects, result).await
}

async fn deploy_stages<E: Effects, S: EventSink>(
    effects: &E,
    plan: &DeployPlan,
    run: &mut Run<'_, S>,
) -> Result<(), (Stage, StepError)> {
    // A directory is linted where it is, before anything is copied; a git
    // source only once it is checked out, before anything is built.
    let lint_in_place = plan.migrate && matches!(plan.source, DeploySource::Dir { .. });
    if lint_in_place {
        run.stage(
            Stage::Preflight,
            "migration lint",
            effects.lint_migrations(&plan.source, None),
        )
        .await?;
    }
    let release = run
        .stage(
            Stage::Stage,
            &plan.source.to_string(),
            effects.stage(&plan.source),
        )
        .await?;
    run.report.release = release.clone();
    if plan.migrate && !lint_in_place {
        let linted = run
            .stage(
                Stage::Preflight,
                "migration lint",
                effects.lint_migrations(&plan.source, Some(&release)),
            )
            .await;
        if let Err(failure) = linted {
            effects.discard(&release, true).await;
            return Err(failure);
        }
    }
    let prepared = prepare(effects, plan, &release, run).await;
    if let Err(failure) = prepared {
        effects.discard(&release, true).await;
        return Err(failure);
    }
    go_live(
        effects,
        &release,
        plan.previous.as_deref(),
        plan.before_traffic.as_deref(),
        plan.smoke,
        true,
        run,
    )
    .await?;
    if plan.migrate {
        contract(effects, &release, run).await;
    }
    if let Some(command) = &plan.after_deploy {
        let hook = run
            .stage(Stage::AfterDeploy, command, async {
                effects.hook(&release, Hook::AfterDeploy, command).await?;
                Ok(String::new())
            })
            .await;
        if let Err((_, error)) = hook {
            run.warn(format!(
                "the after_deploy hook failed (the deploy stands): {error}"
            ));
        }
    }
    match run.stage(Stage::Prune, "", prune(effects)).await {
        Ok(_) => {}
        Err((_, error)) => run.warn(format!("pruning old releases failed: {error}")),
    }
    Ok(())
}

async fn prepare<E: Effects, S: EventSink>(
    effects: &E,
    plan: &DeployPlan,
    release: &str,
    run: &mut Run<'_, S>,
) -> Result<(), (Stage, StepError)> {
    run.stage(Stage::Link, "", effects.link(release)).await?;
    for step in &plan.build_steps {
        run.stage(Stage::Build, step, async {
            effects.build(release, step).await?;
            Ok(String::new())
        })
        .await?;
    }
    if let Some(command) = &plan.before_deploy {
        run.stage(Stage::BeforeDeploy, command, async {
            effects.hook(release, Hook::BeforeDeploy, command).await?;
            Ok(String::new())
        })
        .await?;
    }
    run.stage(Stage::Seal, "", async {
        effects.seal(release).await?;
        Ok(String::new())
    })
    .await?;
    if plan.migrate {
        run.stage(
            Stage::MigrateExpand,
            "",
            effects.migrate(release, MigrationPhase::Expand),
        )
        .await?;
    }
    Ok(())
}

/// The contract phase, once the new version is live: only after the old
/// version has been stopped and has exited (its code may still use what
/// a contract migration drops), and only if there is something to run,
/// so that otherwise the old version stays warm for an instant rollback.
/// The deploy stands whatever happens here: a failure is a warning, and
/// the migrations run again at the next deploy.
async fn contract<E: Effects, S: EventSink>(effects: &E, release: &str, run: &mut Run<'_, S>) {
    let later = "they run again at the next deploy, or with `baton migrate run --phase contract`";
    let pending = match effects
        .pending_migrations(release, MigrationPhase::Contract)
        .await
    {
        Ok(0) => {
            run.note(
                Stage::MigrateContract,
                "no contract migrations pending".to_string(),
            );
            return;
        }
        Ok(pending) => pending,
        Err(error) => {
            run.warn(format!(
                "cannot tell which contract migrations are pending (the deploy stands): {error}; {later}"
            ));
            return;
        }
    };
    let waiting = format!(
        "{pending} contract migration{} wait for the old version to exit",
        if pending == 1 { "" } else { "s" }
    );
    let stopped = run
        .stage(Stage::StopOld, &waiting, effects.stop_others(release))
        .await;
    if let Err((_, error)) = stopped {
        run.warn(format!(
            "the old version did not stop, so the contract migrations did not run (the deploy stands): {error}; {later}"
        ));
        return;
    }
    let migrated = run
        .stage(
            Stage::MigrateContract,
            "",
            effects.migrate(release, MigrationPhase::Contract),
        )
        .await;
    if let Err((_, error)) = migrated {
        run.warn(format!(
            "the contract migrations failed (the deploy stands, the new version serves): {error}; {later}"
        ));
    }
}

/// Boot, switch, workers, retire: shared by deploy and rollback.
/// `fresh` says the release was staged by this run (a failure deletes it).
async fn go_live<E: Effects, S: EventSink>(
    effects: &E,
    release: &str,
    previous: Option<&str>,
    before_traffic: Option<&str>,
    smoke: bool,
    fresh: bool,
    run: &mut Run<'_, S>,
) -> Result<(), (Stage, StepError)> {
    let booted: Result<Booted, _> = run
        .stage_with(Stage::Boot, "", effects.boot(release), |booted: &Booted| {
            booted.detail.clone()
        })
        .await;
    let booted = match booted {
        Ok(booted) => booted,
        Err(failure) => {
            effects.discard(release, fresh).await;
            return Err(failure);
        }
    };
    run.report.boot_ms = booted.boot_ms;
    run.report.warm = booted.warm;

    if smoke {
        let checked = run.stage(Stage::Smoke, "", effects.smoke(release)).await;
        if let Err(failure) = checked {
            effects.discard(release, fresh).await;
            return Err(failure);
        }
    }

    if let Some(command) = before_traffic {
        let hook = run
            .stage(Stage::BeforeTraffic, command, async {
                effects.hook(release, Hook::BeforeTraffic, command).await?;
                Ok(String::new())
            })
            .await;
        if let Err(failure) = hook {
            effects.discard(release, fresh).await;
            return Err(failure);
        }
    }

    let switched: Result<Switched, _> = run
        .stage_with(
            Stage::Switch,
            "",
            effects.switch_traffic(Some(release)),
            |switched: &Switched| format!("old version drained in {} ms", switched.drain_ms),
        )
        .await;
    let switched = match switched {
        Ok(switched) => switched,
        Err(failure) => {
            effects.discard(release, fresh).await;
            return Err(failure);
        }
    };
    run.report.drain_ms = switched.drain_ms;
    run.report.requests_cut_at_drain_timeout = switched.requests_cut;
    run.report.upgraded_connections_closed = switched.upgraded_closed;

    let after_switch = async {
        run.stage(Stage::Current, release, async {
            effects.switch_current(Some(release)).await?;
            Ok(String::new())
        })
        .await?;
        run.stage(
            Stage::Workers,
            "",
            effects.restart_workers(previous, release),
        )
        .await
    };
    if let Err(failure) = after_switch.await {
        restore(effects, release, previous, fresh, run).await;
        return Err(failure);
    }
    if let Some(previous) = previous {
        let detail = effects.retire(previous).await;
        run.note(Stage::Retire, detail);
    }
    Ok(())
}

/// After the switch something failed: give the traffic, `current` and the
/// workers back to the previous release, then discard the new one.
async fn restore<E: Effects, S: EventSink>(
    effects: &E,
    release: &str,
    previous: Option<&str>,
    fresh: bool,
    run: &mut Run<'_, S>,
) {
    if let Err(error) = effects.switch_traffic(previous).await {
        run.warn(format!(
            "restoring traffic to the previous release failed: {error}"
        ));
    }
    if let Err(error) = effects.switch_current(previous).await {
        run.warn(format!("restoring `current` failed: {error}"));
    }
    if let Some(previous) = previous
        && let Err(error) = effects.restart_workers(Some(release), previous).await
    {
        run.warn(format!("restarting the previous workers failed: {error}"));
    }
    effects.discard(release, fresh).await;
}

async fn prune<E: Effects>(effects: &E) -> Result<String, StepError> {
    let deleted = effects.prune().await?;
    Ok(if deleted.is_empty() {
        "nothing to delete".to_string()
    } else {
        format!("deleted {}", deleted.join(", "))
    })
}

/// One run's bookkeeping: stage timings, events, the report.
struct Run<'a, S: EventSink> {
    sink: &'a S,
    started: Instant,
    report: DeployReport,
}

impl<'a, S: EventSink> Run<'a, S> {
    fn new(sink: &'a S, app: &str, previous: Option<String>) -> Self {
        Run {
            sink,
            started: Instant::now(),
            report: DeployReport {
                app: app.to_string(),
                previous_release: previous,
                ..DeployReport::default()
            },
        }
    }

    async fn stage(
        &mut self,
        stage: Stage,
        detail: &str,
        work: impl Future<Output = Result<String, StepError>>,
    ) -> Result<String, (Stage, StepError)> {
        self.stage_with(stage, detail, work, Clone::clone).await
    }

    async fn stage_with<T>(
        &mut self,
        stage: Stage,
        detail: &str,
        work: impl Future<Output = Result<T, StepError>>,
        describe: impl FnOnce(&T) -> String,
    ) -> Result<T, (Stage, StepError)> {
        self.sink.emit(DeployEvent::StageStarted {
            stage: stage.name().to_string(),
            detail: detail.to_string(),
        });
        let started = Instant::now();
        let result = work.await;
        let duration_ms = millis(started.elapsed());
        self.report.stages.push(StageTiming {
            stage: stage.name().to_string(),
            duration_ms,
        });
        match result {
            Ok(value) => {
                self.sink.emit(DeployEvent::StageFinished {
                    stage: stage.name().to_string(),
                    duration_ms,
                    detail: describe(&value),
                });
                Ok(value)
            }
            Err(error) => Err((stage, error)),
        }
    }

    /// A stage that cannot fail and takes no measurable time.
    fn note(&mut self, stage: Stage, detail: String) {
        self.sink.emit(DeployEvent::StageFinished {
            stage: stage.name().to_string(),
            duration_ms: 0,
            detail,
        });
    }

    fn warn(&mut self, message: String) {
        self.sink.emit(DeployEvent::Warning {
            message: message.clone(),
        });
        self.report.warnings.push(message);
    }

    /// Ends the run; a successful one first reads the new version's
    /// traffic report, so the last event carries it.
    async fn finish_reporting<E: Effects>(
        mut self,
        effects: &E,
        result: Result<(), (Stage, StepError)>,
    ) -> Result<DeployReport, (String, StepError)> {
        if result.is_ok() {
            self.report.traffic = effects
                .traffic_report(&self.report.release)
                .await
                .map(Box::new);
        }
        self.finish(result)
    }

    fn finish(
        mut self,
        result: Result<(), (Stage, StepError)>,
    ) -> Result<DeployReport, (String, StepError)> {
        self.report.duration_ms = millis(self.started.elapsed());
        match result {
            Ok(()) => {
                self.sink.emit(DeployEvent::Succeeded {
                    report: self.report.clone(),
                });
                Ok(self.report)
            }
            Err((stage, error)) => {
                self.sink.emit(DeployEvent::Failed {
                    stage: stage.name().to_string(),
                    error: error.to_string(),
                });
                Err((stage.name().to_string(), error))
            }
        }
    }
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Records every effect; fails the one named in `fail_at`.
    #[derive(Default)]
    struct Fake {
        calls: Mutex<Vec<String>>,
        fail_at: Option<&'static str>,
        boot_delay: std::time::Duration,
        events: Mutex<Vec<DeployEvent>>,
        /// Contract migrations the fake's database has pending.
        contract_pending: usize,
    }

    impl Fake {
        fn failing(at: &'static str) -> Self {
            Fake {
                fail_at: Some(at),
                ..Fake::default()
            }
        }

        fn record(&self, call: String) -> Result<(), StepError> {
            let failing = self.fail_at.is_some_and(|at| call == at);
            self.calls.lock().unwrap().push(call.clone());
            if failing {
                Err(StepError::new(format!("{call} broke")))
            } else {
                Ok(())
            }
        }

        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }

        fn last_event(&self) -> DeployEvent {
            self.events.lock().unwrap().last().cloned().unwrap()
        }

        fn stages_started(&self) -> Vec<String> {
            self.events
                .lock()
                .unwrap()
                .iter()
                .filter_map(|event| match event {
                    DeployEvent::StageStarted { stage, .. } => Some(stage.clone()),
                    _ => None,
                })
                .collect()
        }
    }

    impl EventSink for Fake {
        fn emit(&self, event: DeployEvent) {
            self.events.lock().unwrap().push(event);
        }
    }

    impl Effects for Fake {
        async fn stage(&self, _source: &DeploySource) -> Result<String, StepError> {
            self.record("stage".into())?;
            Ok("r2".into())
        }
        async fn link(&self, release: &str) -> Result<String, StepError> {
            self.record(format!("link {release}"))?;
            Ok(String::new())
        }
        async fn build(&self, release: &str, step: &str) -> Result<(), StepError> {
            self.record(format!("build {release} {step}"))
        }
        async fn hook(&self, release: &str, hook: Hook, _command: &str) -> Result<(), StepError> {
            self.record(format!("hook {release} {hook:?}"))
        }
        async fn seal(&self, release: &str) -> Result<(), StepError> {
            self.record(format!("seal {release}"))
        }
        async fn boot(&self, release: &str) -> Result<Booted, StepError> {
            self.record(format!("boot {release}"))?;
            tokio::time::sleep(self.boot_delay).await;
            Ok(Booted {
                warm: false,
                boot_ms: 5,
                detail: String::new(),
            })
        }
        async fn smoke(&self, release: &str) -> Result<String, StepError> {
            self.record(format!("smoke {release}"))?;
            Ok(String::new())
        }
        async fn switch_traffic(&self, release: Option<&str>) -> Result<Switched, StepError> {
            self.record(format!("traffic {}", release.unwrap_or("none")))?;
            Ok(Switched {
                drain_ms: 7,
                ..Switched::default()
            })
        }
        async fn switch_current(&self, release: Option<&str>) -> Result<(), StepError> {
            self.record(format!("current {}", release.unwrap_or("none")))
        }
        async fn restart_workers(&self, from: Option<&str>, to: &str) -> Result<String, StepError> {
            self.record(format!("workers {}->{to}", from.unwrap_or("none")))?;
            Ok(String::new())
        }
        async fn retire(&self, release: &str) -> String {
            let _ = self.record(format!("retire {release}"));
            String::new()
        }
        async fn discard(&self, release: &str, delete: bool) {
            let _ = self.record(format!("discard {release} delete={delete}"));
        }
        async fn traffic_report(&self, release: &str) -> Option<baton_api::PostDeployReport> {
            Some(baton_api::PostDeployReport {
                version: release.to_string(),
                ..baton_api::PostDeployReport::default()
            })
        }
        async fn prune(&self) -> Result<Vec<String>, StepError> {
            self.record("prune".into())?;
            Ok(vec![])
        }
        async fn lint_migrations(
            &self,
            source: &DeploySource,
            release: Option<&str>,
        ) -> Result<String, StepError> {
            match release {
                Some(release) => self.record(format!("lint {release}"))?,
                None => self.record(format!("lint {source}"))?,
            }
            Ok(String::new())
        }
        async fn pending_migrations(
            &self,
            release: &str,
            phase: MigrationPhase,
        ) -> Result<usize, StepError> {
            self.record(format!("pending {release} {}", phase.name()))?;
            Ok(self.contract_pending)
        }
        async fn migrate(&self, release: &str, phase: MigrationPhase) -> Result<String, StepError> {
            self.record(format!("migrate {release} {}", phase.name()))?;
            Ok(String::new())
        }
        async fn stop_others(&self, release: &str) -> Result<String, StepError> {
            self.record(format!("stop others {release}"))?;
            Ok(String::new())
        }
    }

    fn plan() -> DeployPlan {
        DeployPlan {
            app: "hello".into(),
            source: DeploySource::Dir {
                path: "/src".into(),
            },
            build_steps: vec!["make".into()],
            before_deploy: Some("bin/check".into()),
            before_traffic: Some("bin/warm".into()),
            after_deploy: Some("bin/notify".into()),
            smoke: true,
            previous: Some("r1".into()),
            migrate: false,
        }
    }

    /// A deploy of an app with `[migrate]` and one pending contract
    /// migration.
    fn migrating() -> (Fake, DeployPlan) {
        let fake = Fake {
            contract_pending: 1,
            ..Fake::default()
        };
        let plan = DeployPlan {
            migrate: true,
            ..plan()
        };
        (fake, plan)
    }

    #[tokio::test]
    async fn migrations_lint_first_expand_before_the_boot_and_contract_once_the_old_version_is_gone()
     {
        let (fake, plan) = migrating();
        deploy(&fake, &plan, &fake).await.unwrap();
        assert_eq!(
            fake.calls(),
            [
                "lint /src",
                "stage",
                "link r2",
                "build r2 make",
                "hook r2 BeforeDeploy",
                "seal r2",
                "migrate r2 expand",
                "boot r2",
                "smoke r2",
                "hook r2 BeforeTraffic",
                "traffic r2",
                "current r2",
                "workers r1->r2",
                "retire r1",
                "pending r2 contract",
                "stop others r2",
                "migrate r2 contract",
                "hook r2 AfterDeploy",
                "prune",
            ]
        );
        let stages = fake.stages_started();
        let at = |name: &str| stages.iter().position(|stage| stage == name).unwrap();
        assert_eq!(at("preflight"), 0);
        assert!(at("stop_old") < at("migrate_contract"), "{stages:?}");
        assert!(matches!(fake.last_event(), DeployEvent::Succeeded { .. }));
    }

    #[tokio::test]
    async fn a_lint_error_stops_the_deploy_before_anything_is_staged() {
        let (mut fake, plan) = migrating();
        fake.fail_at = Some("lint /src");
        let (stage, _) = deploy(&fake, &plan, &fake).await.unwrap_err();
        assert_eq!(stage, "preflight");
        assert_eq!(fake.calls(), ["lint /src"]);
    }

    #[tokio::test]
    async fn a_git_source_is_linted_once_checked_out_and_before_the_build() {
        let (mut fake, mut plan) = migrating();
        plan.source = DeploySource::Git {
            repo: "/repo".into(),
            reference: "main".into(),
        };
        deploy(&fake, &plan, &fake).await.unwrap();
        assert_eq!(&fake.calls()[..3], ["stage", "lint r2", "link r2"]);
        fake = Fake::failing("lint r2");
        let (stage, _) = deploy(&fake, &plan, &fake).await.unwrap_err();
        assert_eq!(stage, "preflight");
        assert_eq!(fake.calls(), ["stage", "lint r2", "discard r2 delete=true"]);
    }

    #[tokio::test]
    async fn a_failed_expand_boots_nothing_and_the_old_version_serves_on() {
        let (mut fake, plan) = migrating();
        fake.fail_at = Some("migrate r2 expand");
        let (stage, _) = deploy(&fake, &plan, &fake).await.unwrap_err();
        assert_eq!(stage, "migrate_expand");
        let calls = fake.calls();
        assert_eq!(calls.last().unwrap(), "discard r2 delete=true");
        assert!(
            !calls.iter().any(|call| call.starts_with("boot")),
            "{calls:?}"
        );
        assert!(
            !calls.iter().any(|call| call.starts_with("traffic")),
            "{calls:?}"
        );
    }

    #[tokio::test]
    async fn a_deploy_that_fails_or_rolls_back_never_contracts() {
        for at in ["boot r2", "smoke r2", "traffic r2", "workers r1->r2"] {
            let (mut fake, plan) = migrating();
            fake.fail_at = Some(at);
            deploy(&fake, &plan, &fake).await.unwrap_err();
            let calls = fake.calls();
            assert!(calls.contains(&"migrate r2 expand".to_string()), "{at}");
            assert!(
                !calls
                    .iter()
                    .any(|call| call.contains("contract") || call.starts_with("stop others")),
                "{at}: {calls:?}"
            );
        }
    }

    #[tokio::test]
    async fn with_nothing_to_contract_the_old_version_stays_warm() {
        let (mut fake, plan) = migrating();
        fake.contract_pending = 0;
        deploy(&fake, &plan, &fake).await.unwrap();
        let calls = fake.calls();
        assert!(calls.contains(&"pending r2 contract".to_string()));
        assert!(
            !calls.iter().any(|call| call.starts_with("stop others")),
            "{calls:?}"
        );
        assert!(!calls.contains(&"migrate r2 contract".to_string()));
    }

    #[tokio::test]
    async fn a_failed_contract_or_stop_is_a_warning_and_the_deploy_stands() {
        for (at, said) in [
            ("migrate r2 contract", "the contract migrations failed"),
            ("stop others r2", "the old version did not stop"),
            (
                "pending r2 contract",
                "cannot tell which contract migrations",
            ),
        ] {
            let (mut fake, plan) = migrating();
            fake.fail_at = Some(at);
            let report = deploy(&fake, &plan, &fake).await.unwrap();
            assert_eq!(report.warnings.len(), 1, "{at}");
            assert!(
                report.warnings[0].contains(said),
                "{at}: {}",
                report.warnings[0]
            );
            assert!(report.warnings[0].contains("next deploy"), "{at}");
            let calls = fake.calls();
            assert_eq!(calls.last().unwrap(), "prune", "{at}");
            if at == "stop others r2" {
                assert!(!calls.contains(&"migrate r2 contract".to_string()));
            }
        }
    }

    #[tokio::test]
    async fn a_deploy_runs_every_stage_in_order() {
        let fake = Fake::default();
        let report = deploy(&fake, &plan(), &fake).await.unwrap();
        assert_eq!(
            fake.calls(),
            [
                "stage",
                "link r2",
                "build r2 make",
                "hook r2 BeforeDeploy",
                "seal r2",
                "boot r2",
                "smoke r2",
                "hook r2 BeforeTraffic",
                "traffic r2",
                "current r2",
                "workers r1->r2",
                "retire r1",
                "hook r2 AfterDeploy",
                "prune",
            ]
        );
        assert_eq!(report.release, "r2");
        // The last event carries the traffic report of the version that
        // now serves.
        let DeployEvent::Succeeded { report: sent } = fake.last_event() else {
            panic!("the last event is not Succeeded");
        };
        assert_eq!(
            sent.traffic.map(|traffic| traffic.version).as_deref(),
            Some("r2")
        );
        assert_eq!(report.previous_release.as_deref(), Some("r1"));
        assert_eq!((report.boot_ms, report.drain_ms), (5, 7));
        assert!(matches!(fake.last_event(), DeployEvent::Succeeded { .. }));
    }

    #[tokio::test]
    async fn a_failed_build_boots_nothing_and_deletes_the_release() {
        let fake = Fake::failing("build r2 make");
        let (stage, error) = deploy(&fake, &plan(), &fake).await.unwrap_err();
        assert_eq!(stage, "build");
        assert!(error.0.contains("broke"));
        assert_eq!(
            fake.calls(),
            [
                "stage",
                "link r2",
                "build r2 make",
                "discard r2 delete=true"
            ]
        );
        assert!(matches!(fake.last_event(), DeployEvent::Failed { stage, .. } if stage == "build"));
    }

    #[tokio::test]
    async fn a_failed_boot_or_hook_leaves_the_traffic_alone() {
        for (at, stage) in [
            ("boot r2", "boot"),
            ("smoke r2", "smoke"),
            ("hook r2 BeforeTraffic", "before_traffic"),
            ("hook r2 BeforeDeploy", "before_deploy"),
            ("traffic r2", "switch"),
        ] {
            let fake = Fake::failing(at);
            let (failed, _) = deploy(&fake, &plan(), &fake).await.unwrap_err();
            assert_eq!(failed, stage);
            let calls = fake.calls();
            assert_eq!(calls.last().unwrap(), "discard r2 delete=true", "{at}");
            assert!(
                !calls.iter().any(|call| call.starts_with("current")),
                "{at}"
            );
        }
    }

    #[tokio::test]
    async fn crashing_workers_give_everything_back_to_the_old_release() {
        let fake = Fake::failing("workers r1->r2");
        let (stage, _) = deploy(&fake, &plan(), &fake).await.unwrap_err();
        assert_eq!(stage, "workers");
        assert_eq!(
            &fake.calls()[8..],
            [
                "traffic r2",
                "current r2",
                "workers r1->r2",
                "traffic r1",
                "current r1",
                "workers r2->r1",
                "discard r2 delete=true",
            ]
        );
    }

    #[tokio::test]
    async fn an_undone_first_deploy_leaves_no_route() {
        let fake = Fake::failing("workers none->r2");
        let mut first = plan();
        first.previous = None;
        deploy(&fake, &first, &fake).await.unwrap_err();
        let calls = fake.calls();
        assert!(calls.contains(&"traffic none".to_string()), "{calls:?}");
        assert!(calls.contains(&"current none".to_string()), "{calls:?}");
        assert!(!calls.iter().any(|call| call.starts_with("retire")));
    }

    #[tokio::test]
    async fn after_deploy_and_prune_failures_are_warnings() {
        let fake = Fake::failing("hook r2 AfterDeploy");
        let report = deploy(&fake, &plan(), &fake).await.unwrap();
        assert_eq!(report.warnings.len(), 1);
        assert!(report.warnings[0].contains("after_deploy"));
        let fake = Fake::failing("prune");
        let report = deploy(&fake, &plan(), &fake).await.unwrap();
        assert!(report.warnings[0].contains("pruning"));
    }

    #[tokio::test]
    async fn a_rollback_neither_stages_nor_builds() {
        let fake = Fake::default();
        let plan = RollbackPlan {
            app: "hello".into(),
            target: "r1".into(),
            previous: Some("r2".into()),
        };
        let report = rollback(&fake, &plan, &fake).await.unwrap();
        assert_eq!(
            fake.calls(),
            [
                "boot r1",
                "traffic r1",
                "current r1",
                "workers r2->r1",
                "retire r2"
            ]
        );
        assert_eq!(report.release, "r1");
        let fake = Fake::failing("boot r1");
        rollback(&fake, &plan, &fake).await.unwrap_err();
        assert_eq!(fake.calls(), ["boot r1", "discard r1 delete=false"]);
    }

    #[tokio::test(start_paused = true)]
    async fn stage_durations_come_from_the_clock() {
        let fake = Fake {
            boot_delay: std::time::Duration::from_millis(1500),
            ..Fake::default()
        };
        let plan = RollbackPlan {
            app: "a".into(),
            target: "r1".into(),
            previous: None,
        };
        let report = rollback(&fake, &plan, &fake).await.unwrap();
        assert_eq!(report.duration_ms, 1500);
        let boot = report.stages.iter().find(|s| s.stage == "boot").unwrap();
        assert_eq!(boot.duration_ms, 1500);
        let stages: Vec<&str> = report.stages.iter().map(|s| s.stage.as_str()).collect();
        assert_eq!(stages, ["boot", "switch", "current", "workers"]);
    }
}
