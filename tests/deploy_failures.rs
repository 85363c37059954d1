//! End-to-end deploys that fail, and daemon crashes during deploys.
//!
//! Each failure mode of a deploy (a failing build step, a version that never
//! becomes healthy, web processes or workers that crash-loop, a full disk,
//! an invalid `baton.toml`, a second deploy while one runs, failing hooks)
//! must leave the old version serving, untouched and unharmed by the
//! attempt, with an error that says what happened. A daemon killed with -9,
//! in the middle of a deploy or while idle, must come back to exactly one
//! live version, with its app processes adopted and no orphan left.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use baton_api::{DeployOutcomeKind, HistoryEntry, ProcessInfo, VersionRole};
use baton_testkit::{AppSource, CommandOutput, Daemon, processes_under, wait_until};
use support::{
    Load, deploy_app as deploy, deploy_app_args as deploy_args, explain, find_route, get_once,
    join, route_list, serving, spawn_baton,
};

/// The app every test deploys (each test has a daemon of its own).
const APP: &str = "hello";

/// Longest a deploy that is expected to fail fast may take.
const FAST_FAILURE: Duration = Duration::from_secs(30);

/// Longest a restarted daemon may take to serve again. The goal is
/// 1 s; the deadline is generous and the measured time is printed.
const SERVING_AFTER_RESTART: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------
// Build failures
// ---------------------------------------------------------------------------

/// A smoke check that fails keeps every live request on the old version;
/// the error lists each failed check with what came back, and a check that
/// passes (an expected 401 here) is not listed.
#[tokio::test]
async fn a_failing_smoke_check_keeps_all_traffic_on_the_old_version() -> anyhow::Result<()> {
    let app = AppSource::builder(APP, "v1")
        .web_line("processes = 2")
        .build()?;
    let daemon = Daemon::start().await?;
    let outcome = async {
        let v1 = deploy_ok(&daemon, &app).await?;
        append_config(
            &app,
            "[[smoke]]\npath = \"/status/401\"\nexpect_status = 401\n\n\
             [[smoke]]\npath = \"/\"\nexpect_body = \"hello from v2\"\n\n\
             [[smoke]]\npath = \"/status/503\"\n",
        )?;
        app.set_version("v2")?;

        let traffic = Traffic::start(&daemon).await?;
        let output = deploy(&daemon, &app).await?;
        traffic.finish(&["v1"]).await?;

        let text = failure_text(&output)?;
        for expected in [
            "failed at smoke",
            "2 smoke checks failed",
            "GET /status/503",
            "expected status 200, got 503",
        ] {
            ensure!(text.contains(expected), "no {expected:?} in:\n{text}");
        }
        ensure!(
            !text.contains("/status/401 on"),
            "a passing check is listed:\n{text}"
        );
        assert_untouched(&daemon, &app, &v1).await?;

        // Without the failing check the same version passes its smoke stage.
        replace_in_config(&app, "[[smoke]]\npath = \"/status/503\"\n", "")?;
        let passed = deploy(&daemon, &app).await?.success()?;
        ensure!(
            passed.stdout.contains("2 checks passed on 2 processes"),
            "{}",
            passed.stdout
        );
        ensure!(serving(&daemon).await? == "v2");
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test]
async fn a_failing_build_step_boots_nothing_and_keeps_the_old_version() -> anyhow::Result<()> {
    let app = AppSource::builder(APP, "v1").build()?;
    let daemon = Daemon::start().await?;
    let outcome = async {
        let v1 = deploy_ok(&daemon, &app).await?;
        let deploys_before = history(&daemon).await?.len();
        append_config(
            &app,
            "[build]\nsteps = [\"echo compiling; echo oops >&2; exit 2\"]\n",
        )?;
        app.set_version("v2")?;

        let traffic = Traffic::start(&daemon).await?;
        let output = deploy(&daemon, &app).await?;
        traffic.finish(&["v1"]).await?;

        let text = failure_text(&output)?;
        for expected in ["failed at build", "compiling", "oops", "exit status: 2"] {
            ensure!(text.contains(expected), "no {expected:?} in:\n{text}");
        }
        assert_untouched(&daemon, &app, &v1).await?;

        let history = history(&daemon).await?;
        ensure!(history.len() == deploys_before + 1, "{history:#?}");
        let failed = newest(&history)?;
        ensure!(
            failed.outcome == DeployOutcomeKind::Failed,
            "{failed:#?} should have failed"
        );
        ensure!(
            failed.reason.as_deref().is_some_and(|r| r.contains("oops")),
            "the history's reason lacks the step's output: {failed:#?}"
        );
        // The failed release got an id before its build: nothing of it runs.
        ensure!(!failed.release.is_empty() && failed.release != v1);
        let processes = processes(&daemon).await?;
        ensure!(
            !processes.iter().any(|p| p.release == failed.release),
            "the failed release booted: {processes:#?}"
        );
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

// ---------------------------------------------------------------------------
// New versions that never become healthy
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_version_that_never_listens_is_stopped_and_its_output_tail_shown() -> anyhow::Result<()> {
    let app = AppSource::builder(APP, "v1").build()?;
    let daemon = Daemon::start().await?;
    let outcome = async {
        let v1 = deploy_ok(&daemon, &app).await?;
        // 25 numbered lines, then it never listens: the error must show the
        // last 20 of them (<6> to <25>), not the first ones.
        app.write_script(
            "noisy",
            "#!/bin/sh\ni=1\nwhile [ $i -le 25 ]; do echo \"noisy line <$i>\" >&2; \
             i=$((i + 1)); done\nexec sleep 600\n",
        )?;
        replace_in_config(&app, "command = \"./server\"", "command = \"./noisy\"")?;
        replace_in_config(&app, "boot_timeout = \"20s\"", "boot_timeout = \"3s\"")?;
        app.set_version("v2")?;

        let traffic = Traffic::start(&daemon).await?;
        let output = deploy(&daemon, &app).await?;
        traffic.finish(&["v1"]).await?;

        let text = failure_text(&output)?;
        for expected in ["failed at boot", "never became healthy", "<6>", "<25>"] {
            ensure!(text.contains(expected), "no {expected:?} in:\n{text}");
        }
        for unexpected in ["<1>", "<5>"] {
            ensure!(
                !text.contains(unexpected),
                "{unexpected:?} is older than the last 20 lines:\n{text}"
            );
        }
        assert_untouched(&daemon, &app, &v1).await?;
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test]
async fn a_version_failing_its_health_check_is_stopped() -> anyhow::Result<()> {
    let app = AppSource::builder(APP, "v1")
        .web_line("processes = 2")
        .build()?;
    let daemon = Daemon::start().await?;
    let outcome = async {
        let v1 = deploy_ok(&daemon, &app).await?;
        replace_in_config(&app, "[web]\n", "[web]\nenv = { FAIL_HEALTH = \"1\" }\n")?;
        replace_in_config(&app, "boot_timeout = \"20s\"", "boot_timeout = \"3s\"")?;
        app.set_version("v2")?;

        let traffic = Traffic::start(&daemon).await?;
        let output = deploy(&daemon, &app).await?;
        traffic.finish(&["v1"]).await?;

        let text = failure_text(&output)?;
        for expected in ["failed at boot", "did not become healthy within", "/health"] {
            ensure!(text.contains(expected), "no {expected:?} in:\n{text}");
        }
        assert_untouched(&daemon, &app, &v1).await?;
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test]
async fn a_crash_looping_web_process_fails_the_deploy_long_before_its_boot_timeout()
-> anyhow::Result<()> {
    let app = AppSource::builder(APP, "v1").build()?;
    let daemon = Daemon::start().await?;
    let outcome = async {
        let v1 = deploy_ok(&daemon, &app).await?;
        replace_in_config(
            &app,
            "command = \"./server\"",
            "command = \"sh -c 'echo boom >&2; exit 3'\"",
        )?;
        replace_in_config(&app, "boot_timeout = \"20s\"", "boot_timeout = \"60s\"")?;
        app.set_version("v2")?;

        let traffic = Traffic::start(&daemon).await?;
        // Waiting for the boot timeout would take 60 s; a crash loop must
        // end the deploy well before.
        let output = tokio::time::timeout(FAST_FAILURE, deploy(&daemon, &app))
            .await
            .context("a crash-looping deploy was not failed before its boot timeout")??;
        traffic.finish(&["v1"]).await?;

        let text = failure_text(&output)?;
        for expected in [
            "failed at boot",
            "crashed 3 times",
            "exited with status 3",
            "boom",
        ] {
            ensure!(text.contains(expected), "no {expected:?} in:\n{text}");
        }
        assert_untouched(&daemon, &app, &v1).await?;
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

// ---------------------------------------------------------------------------
// Full disk
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_full_disk_while_staging_fails_cleanly() -> anyhow::Result<()> {
    let Some(disk) = SmallDisk::mount()? else {
        return Ok(());
    };
    let app = AppSource::builder(APP, "v1").root(&disk.path).build()?;
    let daemon = Daemon::start().await?;
    let outcome = async {
        let v1 = deploy_ok(&daemon, &app).await?;
        // Twice the disk: staging runs out of space halfway through the copy.
        app.write_file("big.bin", &"x".repeat(4 << 20))?;
        app.set_version("v2")?;

        let traffic = Traffic::start(&daemon).await?;
        let output = deploy(&daemon, &app).await?;
        traffic.finish(&["v1"]).await?;

        let text = failure_text(&output)?;
        for expected in ["failed at stage", "no space left"] {
            ensure!(text.contains(expected), "no {expected:?} in:\n{text}");
        }
        // `assert_untouched` also checks that no half-copied staging
        // directory is left to fill the disk.
        assert_untouched(&daemon, &app, &v1).await?;
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

/// A 2 MiB tmpfs, unmounted on drop (after killing what runs on it).
struct SmallDisk {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    /// `None` (with a note) where mounting is not allowed.
    fn mount() -> anyhow::Result<Option<SmallDisk>> {
        if !nix::unistd::geteuid().is_root() {
            println!("skipped: mounting a small tmpfs needs root");
            return Ok(None);
        }
        let dir = tempfile::Builder::new().prefix("baton-disk-").tempdir()?;
        let path = dir.path().join("root");
        std::fs::create_dir(&path)?;
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
            .arg(&path)
            .output();
        match mounted {
            Ok(output) if output.status.success() => Ok(Some(SmallDisk { path, _dir: dir })),
            Ok(output) => {
                println!(
                    "skipped: cannot mount a tmpfs: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                );
                Ok(None)
            }
            Err(error) => {
                println!("skipped: cannot run mount: {error}");
                Ok(None)
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // A process still running there would keep the mount busy.
        for pid in processes_under(&self.path) {
            kill_group(pid);
        }
        for _ in 0..50 {
            let unmounted = std::process::Command::new("umount")
                .arg(&self.path)
                .status()
                .is_ok_and(|status| status.success());
            if unmounted {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
    }
}

// ---------------------------------------------------------------------------
// Invalid config
// ---------------------------------------------------------------------------

#[tokio::test]
async fn an_invalid_config_is_refused_at_its_line_and_column_and_nothing_happens()
-> anyhow::Result<()> {
    let app = AppSource::builder(APP, "v1").build()?;
    let daemon = Daemon::start().await?;
    let outcome = async {
        let v1 = deploy_ok(&daemon, &app).await?;
        let good = std::fs::read_to_string(app.config_path())?;
        let path = app.config_path().display().to_string();
        app.set_version("v2")?;

        let bad_duration = good.replace("boot_timeout = \"20s\"", "boot_timeout = \"soon\"");
        ensure!(bad_duration != good, "no boot_timeout line in:\n{good}");
        let (line, column) = position_of(&bad_duration, "\"soon\"")?;
        let unknown_key = good.replace("[web]\n", "[web]\ncolour = \"blue\"\n");
        let (key_line, key_column) = position_of(&unknown_key, "colour")?;

        for (text, line, column, what) in [
            (bad_duration, line, column, "soon"),
            (unknown_key, key_line, key_column, "colour"),
        ] {
            let deploys_before = history(&daemon).await?;
            let processes_before = pids(&processes(&daemon).await?);
            app.write_config(&text)?;

            let output = deploy(&daemon, &app).await?;

            let error = failure_text(&output)?;
            let location = format!("{path}:{line}:{column}");
            ensure!(
                error.contains(&location) && error.contains(what),
                "the error does not point at {location} ({what}):\n{error}"
            );
            ensure!(
                history(&daemon).await? == deploys_before,
                "an invalid config changed the history"
            );
            ensure!(
                pids(&processes(&daemon).await?) == processes_before,
                "an invalid config changed the processes"
            );
            assert_untouched(&daemon, &app, &v1).await?;
        }
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

/// The 1-based line and column where `needle` first appears in `text`.
fn position_of(text: &str, needle: &str) -> anyhow::Result<(usize, usize)> {
    let offset = text
        .find(needle)
        .with_context(|| format!("no {needle:?} in:\n{text}"))?;
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    Ok((line, column))
}

// ---------------------------------------------------------------------------
// One deploy at a time
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_second_deploy_while_one_runs_is_refused_naming_the_running_one() -> anyhow::Result<()> {
    let app = AppSource::builder(APP, "v1").build()?;
    let daemon = Daemon::start().await?;
    let outcome = async {
        let v1 = deploy_ok(&daemon, &app).await?;
        append_config(&app, "[build]\nsteps = [\"sleep 3\"]\n")?;
        app.set_version("v2")?;

        let traffic = Traffic::start(&daemon).await?;
        let first = spawn_baton(&daemon, &deploy_args(&app));
        // The first deploy is running once history lists it so.
        let mut running = None;
        let give_up = Instant::now() + Duration::from_secs(15);
        while running.is_none() {
            ensure!(Instant::now() < give_up, "the first deploy never ran");
            running = history(&daemon)
                .await?
                .into_iter()
                .find(|entry| entry.outcome == DeployOutcomeKind::Running);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let running = running.context("no running deploy")?;

        let second = deploy(&daemon, &app).await?;
        let error = failure_text(&second)?;
        let named = format!("#{}", running.id);
        ensure!(
            error.contains("already running") && error.contains(&named),
            "the error does not name the running deploy ({named}):\n{error}"
        );

        let first = join(first, Duration::from_secs(60), "the first deploy").await??;
        let first = first.success()?;
        let v2 = app.current_release().context("no current release")?;
        ensure!(
            v2 != v1,
            "the first deploy did not switch `current`:\n{first:?}"
        );
        traffic.finish(&["v1", "v2"]).await?;
        ensure!(serving(&daemon).await? == "v2");
        let history = history(&daemon).await?;
        ensure!(
            history.len() == 2,
            "the refused deploy reached the history: {history:#?}"
        );
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

// ---------------------------------------------------------------------------
// Hooks
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_failing_before_deploy_hook_aborts_and_a_failing_after_deploy_hook_only_warns()
-> anyhow::Result<()> {
    let app = AppSource::builder(APP, "v1").build()?;
    let daemon = Daemon::start().await?;
    let outcome = async {
        let v1 = deploy_ok(&daemon, &app).await?;
        let plain = std::fs::read_to_string(app.config_path())?;

        app.write_config(&format!(
            "{plain}[hooks]\nbefore_deploy = \"echo refusing $BATON_RELEASE >&2; exit 4\"\n"
        ))?;
        app.set_version("v2")?;
        let traffic = Traffic::start(&daemon).await?;
        let output = deploy(&daemon, &app).await?;
        traffic.finish(&["v1"]).await?;
        let text = failure_text(&output)?;
        for expected in ["failed at before_deploy", "refusing 2", "exit status: 4"] {
            ensure!(text.contains(expected), "no {expected:?} in:\n{text}");
        }
        assert_untouched(&daemon, &app, &v1).await?;

        // The hooks write what they see where the test can read it.
        app.write_config(&format!(
            "{plain}[hooks]\n\
             before_deploy = \"env | grep ^BATON_ | sort > $BATON_SHARED_DIR/before.env\"\n\
             after_deploy = \"echo notifying failed >&2; exit 5\"\n"
        ))?;
        app.set_version("v3")?;
        let traffic = Traffic::start(&daemon).await?;
        let output = deploy(&daemon, &app).await?.success()?;
        traffic.finish(&["v1", "v3"]).await?;
        let text = all_output(&output);
        for expected in [
            "warning",
            "after_deploy",
            "notifying failed",
            "exit status: 5",
        ] {
            ensure!(text.contains(expected), "no {expected:?} in:\n{text}");
        }
        let v3 = app.current_release().context("no current release")?;
        ensure!(v3 != v1 && serving(&daemon).await? == "v3");
        ensure!(newest(&history(&daemon).await?)?.outcome == DeployOutcomeKind::Succeeded);

        let seen = std::fs::read_to_string(app.root().join("shared").join("before.env"))?;
        let release_dir = app.root().join("releases").join(&v3);
        for expected in [
            format!("BATON_APP={APP}"),
            format!("BATON_RELEASE={v3}"),
            format!("BATON_PREVIOUS_RELEASE={v1}"),
            format!("BATON_RELEASE_DIR={}", release_dir.display()),
            "BATON_STAGE=before_deploy".to_string(),
        ] {
            ensure!(
                seen.lines().any(|line| line == expected),
                "the hook did not see {expected:?}; it saw:\n{seen}"
            );
        }
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

// ---------------------------------------------------------------------------
// Workers
// ---------------------------------------------------------------------------

#[tokio::test]
async fn crash_looping_workers_give_traffic_current_and_workers_back_to_the_old_release()
-> anyhow::Result<()> {
    let app = AppSource::builder(APP, "v1")
        .extra("[[workers]]\nname = \"jobs\"\ncommand = \"./worker\"\nstop_timeout = \"5s\"")
        .build()?;
    let daemon = Daemon::start().await?;
    let outcome = async {
        let v1 = deploy_ok(&daemon, &app).await?;
        replace_in_config(
            &app,
            "command = \"./worker\"",
            "command = \"sh -c 'echo worker boom >&2; exit 7'\"",
        )?;
        app.set_version("v2")?;

        let traffic = Traffic::start(&daemon).await?;
        let output = tokio::time::timeout(FAST_FAILURE, deploy(&daemon, &app))
            .await
            .context("the deploy with crash-looping workers did not end")??;
        // The traffic went to v2 for a moment before the workers failed.
        traffic.finish(&["v1", "v2"]).await?;

        let text = failure_text(&output)?;
        for expected in [
            "failed at workers",
            "jobs process 1",
            "crashed 3 times",
            "worker boom",
        ] {
            ensure!(text.contains(expected), "no {expected:?} in:\n{text}");
        }
        assert_untouched(&daemon, &app, &v1).await?;
        // v1's worker was asked to finish its job when v2's started: it may
        // still be stopping (up to its stop_timeout) beside its fresh
        // replacement.
        let one_worker = |processes: &[ProcessInfo]| {
            let workers: Vec<&ProcessInfo> =
                processes.iter().filter(|p| p.role == "jobs").collect();
            workers.len() == 1 && workers[0].pid != 0 && workers[0].state == "running"
        };
        let back = wait_until(Duration::from_secs(15), "one v1 worker", || async {
            processes(&daemon).await.is_ok_and(|list| one_worker(&list))
        })
        .await;
        if back.is_err() {
            anyhow::bail!(
                "v1's worker is not running again alone: {:#?}",
                processes(&daemon).await?
            );
        }
        assert_untouched(&daemon, &app, &v1).await?;
        let routes = route_list(&daemon).await?;
        let route = find_route(&routes, APP)?;
        ensure!(
            route.versions.iter().all(|version| version.label == v1),
            "{route:#?}"
        );
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

// ---------------------------------------------------------------------------
// kill -9 of the daemon
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_daemon_killed_during_a_boot_comes_back_on_the_old_version_alone() -> anyhow::Result<()> {
    let app = AppSource::builder(APP, "v1")
        .web_line("processes = 2")
        .build()?;
    let mut daemon = Daemon::start().await?;
    let v1 = explained(deploy_ok(&daemon, &app).await, &daemon)?;
    // The new version sleeps before it listens: the daemon dies mid-boot.
    replace_in_config(
        &app,
        "[web]\n",
        "[web]\nenv = { BOOT_DELAY_MS = \"10000\" }\n",
    )?;
    app.set_version("v2")?;
    let deploying = spawn_baton(&daemon, &deploy_args(&app));
    let booting = wait_until(
        Duration::from_secs(20),
        "the new version's processes",
        || async {
            processes(&daemon)
                .await
                .is_ok_and(|list| list.iter().any(|p| p.release != v1 && p.pid != 0))
        },
    )
    .await;
    explain(booting, &daemon)?;
    daemon.kill9().await?;
    let cut = join(deploying, Duration::from_secs(30), "the cut deploy").await??;
    ensure!(!cut.status.success(), "a deploy cut by kill -9 succeeded");

    let _state = daemon.keep_state();
    let state_dir = daemon.state_dir().to_path_buf();
    drop(daemon);
    let (daemon, took) = restart_serving(&state_dir, "v1").await?;
    println!("serving v1 again {took:?} after the restart began");
    let outcome = async {
        let entry = newest(&history(&daemon).await?)?.clone();
        ensure!(
            entry.outcome == DeployOutcomeKind::Interrupted,
            "the cut deploy is not marked interrupted: {entry:#?}"
        );
        assert_only_live(&daemon, &v1).await?;
        ensure!(app.current_release().as_deref() == Some(v1.as_str()));
        // The interrupted version's processes get their stop signal from the
        // new daemon; what is left must be exactly v1's supervised processes.
        let settled = wait_until(
            Duration::from_secs(15),
            "only v1's supervised processes to run",
            || async {
                let only_v1 = processes(&daemon)
                    .await
                    .is_ok_and(|list| list.iter().all(|p| p.release == v1));
                only_v1 && orphans(&daemon, &app).await.is_ok_and(|o| o.is_empty())
            },
        )
        .await;
        if settled.is_err() {
            anyhow::bail!(
                "left running: {:#?}\nsupervised: {:#?}",
                orphans(&daemon, &app).await?,
                processes(&daemon).await?
            );
        }
        let processes = processes(&daemon).await?;
        ensure!(
            processes.len() == 2 && processes.iter().all(|p| p.release == v1),
            "{processes:#?}"
        );
        ensure!(serving(&daemon).await? == "v1");
        // The release that never served is no rollback target: it goes.
        wait_until(
            Duration::from_secs(15),
            "the unserved release to go",
            || {
                let dirs = app.release_dirs();
                let v1 = v1.clone();
                async move { dirs == [v1] }
            },
        )
        .await?;
        let listed = daemon
            .baton(&["releases", "--app", APP, "--json"])
            .await?
            .success()?;
        ensure!(
            !listed.stdout.contains("\"current\": false"),
            "{}",
            listed.stdout
        );
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test]
async fn a_daemon_killed_during_a_build_step_leaves_no_build_behind() -> anyhow::Result<()> {
    let app = AppSource::builder(APP, "v1").build()?;
    let daemon = Daemon::start().await?;
    let v1 = explained(deploy_ok(&daemon, &app).await, &daemon)?;
    let (daemon, _state, _took) = kill9_during(
        daemon,
        &app,
        "[build]\nsteps = [\"touch $BATON_SHARED_DIR/started; sleep 60\"]\n",
        "v1",
    )
    .await?;
    let outcome = async {
        // The build step's shell and its sleep were nobody's children any
        // more; the new daemon finds them by the run's marker.
        let settled = wait_until(Duration::from_secs(15), "no build step left", || async {
            orphans(&daemon, &app).await.is_ok_and(|o| o.is_empty())
        })
        .await;
        if settled.is_err() {
            anyhow::bail!("left running: {:#?}", orphans(&daemon, &app).await?);
        }
        ensure!(
            app.release_dirs() == [v1.clone()],
            "{:?}",
            app.release_dirs()
        );
        ensure!(app.current_release().as_deref() == Some(v1.as_str()));
        ensure!(serving(&daemon).await? == "v1");
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test]
async fn a_daemon_killed_after_the_traffic_switch_comes_back_on_the_new_version()
-> anyhow::Result<()> {
    let app = AppSource::builder(APP, "v1").build()?;
    let daemon = Daemon::start().await?;
    let v1 = explained(deploy_ok(&daemon, &app).await, &daemon)?;
    // After the switch, the after_deploy hook signals that it runs and then
    // holds the deploy open long enough to kill the daemon inside it.
    let (daemon, _state, took) = kill9_during(
        daemon,
        &app,
        "[hooks]\nafter_deploy = \"touch $BATON_SHARED_DIR/started; sleep 4\"\n",
        "v2",
    )
    .await?;
    println!("serving v2 again {took:?} after the restart began");
    let outcome = async {
        let v2 = app.current_release().context("no current release")?;
        ensure!(v2 != v1, "`current` went back to v1");
        assert_only_live(&daemon, &v2).await?;
        let entry = newest(&history(&daemon).await?)?.clone();
        ensure!(
            entry.outcome == DeployOutcomeKind::Interrupted && entry.release == v2,
            "the cut deploy should be interrupted, naming {v2}: {entry:#?}"
        );
        let processes = processes(&daemon).await?;
        let old: Vec<&ProcessInfo> = processes.iter().filter(|p| p.release == v1).collect();
        ensure!(
            old.iter()
                .all(|p| p.state == "warm" || p.state == "stopping"),
            "v1's processes should be warm or stopping: {processes:#?}"
        );
        ensure!(
            processes
                .iter()
                .any(|p| p.release == v2 && p.role == "web" && p.pid != 0),
            "v2 has no web process: {processes:#?}"
        );
        // The hook the dead daemon ran is nobody's child any more; it ends
        // by itself, and nothing else may be left unsupervised.
        let settled = wait_until(
            Duration::from_secs(15),
            "only supervised processes to run",
            || async { orphans(&daemon, &app).await.is_ok_and(|o| o.is_empty()) },
        )
        .await;
        if settled.is_err() {
            anyhow::bail!("left running: {:#?}", orphans(&daemon, &app).await?);
        }
        // What the cut deploy made live is the current release in every
        // sense: a plain `rollback` returns from it to v1.
        let traffic = Traffic::start(&daemon).await?;
        daemon.baton(&["rollback", "--app", APP]).await?.success()?;
        traffic.finish(&["v1", "v2"]).await?;
        ensure!(app.current_release().as_deref() == Some(v1.as_str()));
        ensure!(serving(&daemon).await? == "v1");
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test]
async fn a_daemon_killed_while_idle_adopts_its_apps_and_restarts_the_one_that_died()
-> anyhow::Result<()> {
    let app = AppSource::builder(APP, "v1")
        .web_line("processes = 2")
        .extra("[[workers]]\nname = \"jobs\"\ncommand = \"./worker\"\nstop_timeout = \"5s\"")
        .build()?;
    let mut daemon = Daemon::start().await?;
    let before = async {
        deploy_ok(&daemon, &app).await?;
        slots(&processes(&daemon).await?)
    }
    .await;
    let before = explained(before, &daemon)?;
    ensure!(before.len() == 3, "{before:?}");
    let victim = before
        .get(&("web".to_string(), 1))
        .copied()
        .context("no web.1")?;

    daemon.kill9().await?;
    // Dies while nobody watches it.
    nix::sys::signal::kill(pid_of(victim)?, nix::sys::signal::Signal::SIGKILL)?;
    wait_until(Duration::from_secs(10), "the killed process to end", || {
        std::future::ready(!is_running(victim))
    })
    .await?;

    let _state = daemon.keep_state();
    let state_dir = daemon.state_dir().to_path_buf();
    drop(daemon);
    let (daemon, took) = restart_serving(&state_dir, "v1").await?;
    println!("serving v1 again {took:?} after the restart began");
    let outcome = async {
        let restarted = wait_until(Duration::from_secs(15), "web.1 to be restarted", || async {
            processes(&daemon).await.is_ok_and(|list| {
                list.iter()
                    .any(|p| p.role == "web" && p.index == 1 && p.pid != 0 && p.pid != victim)
            })
        })
        .await;
        if restarted.is_err() {
            anyhow::bail!("web.1 was not restarted: {:#?}", processes(&daemon).await?);
        }
        let after = slots(&processes(&daemon).await?)?;
        for (slot, pid) in &before {
            if *pid != victim {
                ensure!(
                    after.get(slot) == Some(pid),
                    "{slot:?} was not adopted: pid {pid} before, {:?} after",
                    after.get(slot)
                );
            }
        }
        ensure!(orphans(&daemon, &app).await?.is_empty());
        // The restarted process kept its port, so the saved route reaches
        // it: both targets pass their health checks again.
        let healthy = wait_until(Duration::from_secs(15), "both targets healthy", || async {
            route_list(&daemon).await.is_ok_and(|routes| {
                find_route(&routes, APP).is_ok_and(|route| {
                    route.versions.len() == 1
                        && route.versions[0].targets.len() == 2
                        && route.versions[0].targets.iter().all(|t| t.healthy)
                })
            })
        })
        .await;
        if healthy.is_err() {
            anyhow::bail!(
                "the route did not recover: {:#?}",
                route_list(&daemon).await?
            );
        }
        for _ in 0..10 {
            ensure!(serving(&daemon).await? == "v1");
        }
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

/// Starts a daemon on `state_dir` and waits until it serves `version`;
/// returns it and how long that took from the start.
/// Deploys v2 with `toml` appended to its config, whose command touches
/// `$BATON_SHARED_DIR/started` and then holds the deploy open; kills the
/// daemon with -9 inside it, then starts a new daemon on the same state and
/// waits until it serves `serving`. Returns the new daemon, the state it
/// must keep, and how long it took to serve.
async fn kill9_during(
    mut daemon: Daemon,
    app: &AppSource,
    toml: &str,
    serving: &str,
) -> anyhow::Result<(Daemon, Option<tempfile::TempDir>, Duration)> {
    let started = app.root().join("shared").join("started");
    append_config(app, toml)?;
    app.set_version("v2")?;
    let deploying = spawn_baton(&daemon, &deploy_args(app));
    let inside = wait_until(Duration::from_secs(30), "the slow step to start", || {
        let started = started.clone();
        async move { started.exists() }
    })
    .await;
    explain(inside, &daemon)?;
    daemon.kill9().await?;
    let cut = join(deploying, Duration::from_secs(30), "the cut deploy").await??;
    ensure!(!cut.status.success(), "a deploy cut by kill -9 succeeded");
    let state = daemon.keep_state();
    let state_dir = daemon.state_dir().to_path_buf();
    drop(daemon);
    let (daemon, took) = restart_serving(&state_dir, serving).await?;
    Ok((daemon, state, took))
}

async fn restart_serving(state_dir: &Path, version: &str) -> anyhow::Result<(Daemon, Duration)> {
    let began = Instant::now();
    let daemon = Daemon::builder().state_dir(state_dir).start().await?;
    let give_up = began + SERVING_AFTER_RESTART;
    loop {
        let answer = get_once(daemon.http_address(), "/").await;
        let serves = answer
            .as_ref()
            .is_ok_and(|reply| reply.status.is_success() && reply.version() == Some(version));
        if serves {
            return Ok((daemon, began.elapsed()));
        }
        if Instant::now() >= give_up {
            eprintln!("--- daemon log ---\n{}", daemon.logs());
            anyhow::bail!(
                "the restarted daemon did not serve {version} within \
                 {SERVING_AFTER_RESTART:?}; last answer: {answer:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// [`explain`] for an outcome carrying a value.
fn explained<T>(outcome: anyhow::Result<T>, daemon: &Daemon) -> anyhow::Result<T> {
    if outcome.is_err() {
        eprintln!("--- daemon log ---\n{}", daemon.logs());
    }
    outcome
}

/// Fails unless the app's route has exactly one version, `release`.
async fn assert_only_live(daemon: &Daemon, release: &str) -> anyhow::Result<()> {
    let routes = route_list(daemon).await?;
    let route = find_route(&routes, APP)?;
    ensure!(
        route.versions.len() == 1
            && route.versions[0].label == release
            && route.versions[0].role == VersionRole::Stable,
        "{release} should be the only live version: {route:#?}"
    );
    Ok(())
}

/// Processes running in the app root that the daemon does not supervise,
/// with their working directory and command line.
async fn orphans(daemon: &Daemon, app: &AppSource) -> anyhow::Result<Vec<String>> {
    let supervised = pids(&processes(daemon).await?);
    Ok(processes_under(app.root())
        .into_iter()
        .filter(|pid| !supervised.contains(pid))
        .map(describe_process)
        .collect())
}

/// (role, index) → pid of every process.
fn slots(processes: &[ProcessInfo]) -> anyhow::Result<BTreeMap<(String, u32), u32>> {
    let mut slots = BTreeMap::new();
    for process in processes {
        ensure!(process.pid != 0, "{process:?} is not running");
        slots.insert((process.role.clone(), process.index), process.pid);
    }
    Ok(slots)
}

/// Whether `pid` runs (a zombie does not).
fn is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Deploys `app`, which must succeed; returns the release now current.
async fn deploy_ok(daemon: &Daemon, app: &AppSource) -> anyhow::Result<String> {
    deploy(daemon, app).await?.success()?;
    app.current_release()
        .context("no `current` after a successful deploy")
}

/// `baton ps --app hello --json`.
async fn processes(daemon: &Daemon) -> anyhow::Result<Vec<ProcessInfo>> {
    let output = daemon
        .baton(&["ps", "--app", APP, "--json"])
        .await?
        .success()?;
    serde_json::from_str(&output.stdout)
        .with_context(|| format!("ps --json printed {:?}", output.stdout))
}

/// The running processes' pids.
fn pids(processes: &[ProcessInfo]) -> BTreeSet<u32> {
    processes
        .iter()
        .map(|process| process.pid)
        .filter(|pid| *pid != 0)
        .collect()
}

/// `baton history --app hello --json`.
async fn history(daemon: &Daemon) -> anyhow::Result<Vec<HistoryEntry>> {
    let output = daemon
        .baton(&["history", "--app", APP, "--json"])
        .await?
        .success()?;
    serde_json::from_str(&output.stdout)
        .with_context(|| format!("history --json printed {:?}", output.stdout))
}

/// The latest run in `history`.
fn newest(history: &[HistoryEntry]) -> anyhow::Result<&HistoryEntry> {
    history
        .iter()
        .max_by_key(|entry| entry.id)
        .context("the history is empty")
}

/// What a command that must have failed printed, both streams; printed
/// with the test's output too, for a reader checking what users see.
fn failure_text(output: &CommandOutput) -> anyhow::Result<String> {
    ensure!(
        !output.status.success(),
        "the command succeeded: {output:?}"
    );
    let text = all_output(output);
    println!("--- the failed command printed ---\n{text}");
    Ok(text)
}

/// What a command printed, both streams.
fn all_output(output: &CommandOutput) -> String {
    format!("{}\n{}", output.stdout, output.stderr)
}

/// Appends TOML (a new table) to the app's `baton.toml`.
fn append_config(app: &AppSource, toml: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(app.config_path())?;
    app.write_config(&format!("{text}\n{toml}"))
}

/// Replaces the first `old` in the app's `baton.toml`, which must have it.
fn replace_in_config(app: &AppSource, old: &str, new: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(app.config_path())?;
    ensure!(text.contains(old), "no {old:?} in:\n{text}");
    app.write_config(&text.replacen(old, new, 1))
}

/// Everything a failed deploy must have left as it was: `current` at
/// `release`, no other release directory (no failed or half-staged one),
/// `release` (which ships v1) serving, and no process but its supervised
/// ones.
async fn assert_untouched(daemon: &Daemon, app: &AppSource, release: &str) -> anyhow::Result<()> {
    ensure!(
        app.current_release().as_deref() == Some(release),
        "`current` moved: {:?}",
        app.current_release()
    );
    ensure!(
        app.release_dirs() == [release],
        "release directories: {:?}",
        app.release_dirs()
    );
    ensure!(serving(daemon).await? == "v1", "v1 no longer serves");
    let processes = processes(daemon).await?;
    ensure!(
        !processes.is_empty() && processes.iter().all(|p| p.release == release),
        "processes of another release: {processes:#?}"
    );
    let supervised = pids(&processes);
    let running: BTreeSet<u32> = processes_under(app.root()).into_iter().collect();
    ensure!(
        running == supervised,
        "running in the app root: {:#?}; supervised: {processes:#?}",
        running
            .iter()
            .map(|pid| describe_process(*pid))
            .collect::<Vec<_>>()
    );
    Ok(())
}

/// `pid (cwd): command line`, for failure reports.
fn describe_process(pid: u32) -> String {
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
    let command = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', " "))
        .unwrap_or_default();
    format!("{pid} ({}): {}", cwd.display(), command.trim())
}

fn pid_of(pid: u32) -> anyhow::Result<nix::unistd::Pid> {
    Ok(nix::unistd::Pid::from_raw(i32::try_from(pid)?))
}

/// SIGKILLs the process group `pid` leads (app processes lead their own).
fn kill_group(pid: u32) {
    if let Ok(pid) = pid_of(pid) {
        let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
    }
}

/// Keep-alive requests through the daemon while something happens; none
/// may fail.
struct Traffic {
    load: Load,
}

impl Traffic {
    /// Starts two keep-alive clients on `GET /` and waits for their first
    /// answers.
    async fn start(daemon: &Daemon) -> anyhow::Result<Traffic> {
        let load = Load::start(daemon.http_address(), 2, "/");
        load.wait_for_answers(20).await?;
        Ok(Traffic { load })
    }

    /// Lets some more requests through, then stops; fails if any request
    /// failed or was answered by a version not in `versions`.
    async fn finish(self, versions: &[&str]) -> anyhow::Result<()> {
        let answered = self.load.tally.ok.load(Ordering::Relaxed);
        self.load.wait_for_answers(answered + 20).await?;
        let tally = self.load.stop().await?;
        tally.assert_no_failures()?;
        let seen = tally.versions();
        ensure!(
            seen.keys()
                .all(|version| versions.contains(&version.as_str())),
            "answers came from {seen:?}; expected only {versions:?}"
        );
        Ok(())
    }
}
