//! End-to-end `baton flags` against a real daemon: flags are created,
//! switched, listed, exported, deleted and imported back through the CLI;
//! every change makes the revision go up by one and leaves an audit entry
//! naming who did it, with the flag before and after; a change to what
//! already is changes nothing; bad input is refused with a message and
//! changes nothing at all; the flags and their revision survive a restart;
//! `baton flags stale` reports the flags fully on or off and unchanged for
//! longer than `--days`.

mod support;

use anyhow::{Context, ensure};
use baton_api::{FlagAuditEntry, FlagChanged, FlagInfo, FlagList, FlagState, StaleFlags};
use baton_state::{FlagChange, Store};
use baton_testkit::{CommandOutput, Daemon};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::{TempDir, explain, restart};

/// Who the CLI says it is (`SUDO_USER` comes first in its lookup).
const USER: &str = "flag-tester";

/// `baton ARGS…` against `daemon`, as [`USER`].
async fn baton(daemon: &Daemon, args: &[&str]) -> anyhow::Result<CommandOutput> {
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        daemon.command().env("SUDO_USER", USER).args(args).output(),
    )
    .await
    .with_context(|| format!("baton {args:?} did not finish"))??;
    Ok(CommandOutput {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// `baton ARGS… --json`, successful, read as `T`.
async fn json<T: serde::de::DeserializeOwned>(daemon: &Daemon, args: &[&str]) -> anyhow::Result<T> {
    let mut args = args.to_vec();
    args.push("--json");
    let output = baton(daemon, &args).await?.success()?;
    serde_json::from_str(&output.stdout)
        .with_context(|| format!("baton {args:?} printed no JSON:\n{}", output.stdout))
}

/// Runs `baton ARGS…` expecting it to fail with `said` on standard error.
async fn refused(daemon: &Daemon, args: &[&str], said: &str) -> anyhow::Result<()> {
    let output = baton(daemon, args).await?;
    ensure!(
        !output.status.success(),
        "baton {args:?} succeeded:\n{}",
        output.stdout
    );
    ensure!(
        output.stderr.contains(said),
        "baton {args:?} did not say {said:?}:\n{}",
        output.stderr
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn flags_are_changed_listed_audited_exported_and_imported() -> anyhow::Result<()> {
    let daemon = Daemon::start().await?;
    let files = TempDir::new("flags")?;
    let outcome = async {
        let empty: FlagList = json(&daemon, &["flags", "list"]).await?;
        ensure!(empty.revision == 0 && empty.flags.is_empty(), "{empty:?}");

        let set = baton(
            &daemon,
            &[
                "flags",
                "set",
                "new_editor",
                "--rollout",
                "5%",
                "--users",
                "alice,bob",
                "--description",
                "The new editor",
            ],
        )
        .await?
        .success()?;
        ensure!(set.stdout.contains("revision 1"), "{}", set.stdout);

        let checkout: FlagChanged = json(
            &daemon,
            &["flags", "set", "checkout", "--variants", "a:50,b:50"],
        )
        .await?;
        ensure!(checkout.revision == 2 && checkout.changed, "{checkout:?}");
        let weights: Vec<u32> = checkout
            .flag
            .context("no flag in the answer")?
            .variants
            .iter()
            .map(|variant| variant.weight)
            .collect();
        ensure!(weights == [500, 500], "{weights:?}");

        let off: FlagChanged = json(&daemon, &["flags", "off", "new_editor"]).await?;
        ensure!(off.revision == 3, "{off:?}");
        ensure!(!off.flag.context("no flag")?.enabled);
        let on: FlagChanged = json(&daemon, &["flags", "on", "new_editor"]).await?;
        ensure!(on.revision == 4, "{on:?}");
        let again = baton(&daemon, &["flags", "on", "new_editor"])
            .await?
            .success()?;
        ensure!(
            again.stdout.contains("nothing changed (revision 4)"),
            "{}",
            again.stdout
        );

        let shown: FlagInfo = json(&daemon, &["flags", "show", "new_editor"]).await?;
        ensure!(shown.enabled, "{shown:?}");
        ensure!(
            shown.strategies == ["users alice, bob", "5% of users"],
            "{:?}",
            shown.strategies
        );
        ensure!(shown.description.as_deref() == Some("The new editor"));
        ensure!(shown.revision == 4, "{shown:?}");
        let strategies = &shown.definition["strategies"];
        ensure!(strategies[0]["name"] == "userWithId", "{strategies}");
        ensure!(strategies[1]["name"] == "flexibleRollout", "{strategies}");
        ensure!(strategies[1]["parameters"]["stickiness"] == "default");
        ensure!(strategies[1]["parameters"]["groupId"] == "new_editor");

        let listed = baton(&daemon, &["flags", "list"]).await?.success()?;
        for expected in [
            "revision 4, 2 flags",
            "new_editor",
            "checkout",
            "5% of users",
        ] {
            ensure!(listed.stdout.contains(expected), "{}", listed.stdout);
        }

        let history: Vec<FlagAuditEntry> =
            json(&daemon, &["flags", "history", "new_editor"]).await?;
        let seen: Vec<(u64, &str)> = history
            .iter()
            .map(|entry| (entry.revision, entry.action.as_str()))
            .collect();
        ensure!(seen == [(4, "on"), (3, "off"), (1, "set")], "{seen:?}");
        ensure!(history.iter().all(|entry| entry.who == USER), "{history:?}");
        let switched_off = &history[1];
        ensure!(
            switched_off
                .before
                .as_ref()
                .is_some_and(|before| before["enabled"] == true)
        );
        ensure!(
            switched_off
                .after
                .as_ref()
                .is_some_and(|after| after["enabled"] == false)
        );
        ensure!(history[2].before.is_none(), "a created flag has no before");
        let human = baton(&daemon, &["flags", "history"]).await?.success()?;
        for expected in ["switched off", "switched on", "created", USER] {
            ensure!(human.stdout.contains(expected), "{}", human.stdout);
        }

        let export = files.path.join("flags.json");
        let export_arg = export.display().to_string();
        baton(&daemon, &["flags", "export", &export_arg])
            .await?
            .success()?;
        let deleted: FlagChanged = json(&daemon, &["flags", "delete", "checkout"]).await?;
        ensure!(deleted.revision == 5, "{deleted:?}");
        let imported: FlagChanged = json(&daemon, &["flags", "import", &export_arg]).await?;
        ensure!(
            imported.revision == 6 && imported.touched == 1,
            "{imported:?}"
        );
        let list: FlagList = json(&daemon, &["flags", "list"]).await?;
        let names: Vec<&str> = list.flags.iter().map(|flag| flag.name.as_str()).collect();
        ensure!(names == ["new_editor", "checkout"], "{names:?}");
        let history: Vec<FlagAuditEntry> = json(&daemon, &["flags", "history", "checkout"]).await?;
        ensure!(
            history
                .iter()
                .map(|entry| entry.action.as_str())
                .collect::<Vec<_>>()
                == ["import", "delete", "set"],
            "{history:?}"
        );
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_refused_and_changes_nothing() -> anyhow::Result<()> {
    let daemon = Daemon::start().await?;
    let files = TempDir::new("flags-bad")?;
    let outcome = async {
        baton(&daemon, &["flags", "set", "kept", "--users", "alice"])
            .await?
            .success()?;
        let before: FlagList = json(&daemon, &["flags", "list"]).await?;
        let write = |name: &str, text: &str| -> anyhow::Result<String> {
            let path = files.path.join(name);
            std::fs::write(&path, text)?;
            Ok(path.display().to_string())
        };
        let not_json = write("not.json", "{\"features\": [")?;
        let no_switch = write("no-switch.json", r#"{"features": [{"name": "x"}]}"#)?;
        let twice = write(
            "twice.json",
            r#"{"features": [{"name": "x", "enabled": true}, {"name": "x", "enabled": false}]}"#,
        )?;
        let missing = files.path.join("missing.json").display().to_string();

        let refusals: [(&[&str], &str); 13] = [
            (&["flags", "off", "nope"], "no flag named \"nope\""),
            (&["flags", "show", "nope"], "no flag named \"nope\""),
            (&["flags", "delete", "nope"], "no flag named \"nope\""),
            (
                &["flags", "set", "kept", "--rollout", "150%"],
                "not a percentage",
            ),
            (
                &["flags", "set", "kept", "--rollout", "lots"],
                "not a percentage",
            ),
            (
                &["flags", "set", "bad name", "--rollout", "5%"],
                "is not valid",
            ),
            (
                &["flags", "set", "kept", "--variants", "a:0,b:0"],
                "weigh nothing",
            ),
            (&["flags", "set", "kept", "--users", ""], "no strategy"),
            (&["flags", "set", "kept"], "say what to set"),
            (&["flags", "import", &not_json], "not Unleash's"),
            (&["flags", "import", &no_switch], "missing field `enabled`"),
            (&["flags", "import", &twice], "two flags are named \"x\""),
            (&["flags", "import", &missing], "cannot read"),
        ];
        for (args, said) in refusals {
            refused(&daemon, args, said).await?;
        }

        let after: FlagList = json(&daemon, &["flags", "list"]).await?;
        ensure!(after == before, "{before:?}\nbecame\n{after:?}");
        let history: Vec<FlagAuditEntry> = json(&daemon, &["flags", "history"]).await?;
        ensure!(history.len() == 1, "{history:?}");
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test(flavor = "multi_thread")]
async fn flags_and_their_revision_survive_a_restart() -> anyhow::Result<()> {
    let daemon = Daemon::start().await?;
    let outcome = async {
        baton(&daemon, &["flags", "set", "a", "--rollout", "50%"])
            .await?
            .success()?;
        baton(&daemon, &["flags", "off", "a"]).await?.success()?;
        json::<FlagList>(&daemon, &["flags", "list"]).await
    }
    .await;
    let before = match outcome {
        Ok(list) => list,
        Err(error) => return explain(Err(error), &daemon),
    };
    let (again, state) = restart(daemon, &[]).await?;
    let outcome = async {
        let after: FlagList = json(&again, &["flags", "list"]).await?;
        ensure!(after == before, "{before:?}\nbecame\n{after:?}");
        let next: FlagChanged = json(&again, &["flags", "on", "a"]).await?;
        ensure!(next.revision == before.revision + 1, "{next:?}");
        Ok(())
    }
    .await;
    let result = explain(outcome, &again);
    // The daemon stops before its state directory goes.
    drop(again);
    drop(state);
    result
}

/// Flags the audit says were last changed `days_ago` days ago by `who`,
/// added straight to the stopped daemon's state database: the CLI can only
/// make changes now, and the daemon's clock is the real one.
fn add_old_flags(daemon: &Daemon, days_ago: u64, flags: &[(&str, &str)]) -> anyhow::Result<()> {
    const DAY_MS: u64 = 24 * 60 * 60 * 1000;
    let now_ms = u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis())?;
    let store = Store::open(&daemon.state_dir().join("state.db"))?;
    let set = store.flag_set()?;
    let mut all: Vec<(String, String)> = set
        .flags
        .into_iter()
        .map(|flag| (flag.name, flag.definition_json))
        .collect();
    all.extend(
        flags
            .iter()
            .map(|(name, json)| ((*name).to_string(), (*json).to_string())),
    );
    store.change_flags(&FlagChange {
        base_revision: set.revision,
        action: "import".to_string(),
        who: "carol".to_string(),
        at_ms: now_ms - days_ago * DAY_MS - 60_000,
        flags: all,
        segments: set
            .segments
            .into_iter()
            .map(|segment| (segment.id, segment.definition_json))
            .collect(),
    })?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn flags_on_or_off_and_unchanged_for_long_are_stale() -> anyhow::Result<()> {
    let mut daemon = Daemon::start().await?;
    let outcome = async {
        baton(&daemon, &["flags", "set", "fresh_on", "--rollout", "100%"])
            .await?
            .success()?;
        baton(&daemon, &["flags", "set", "fresh_off", "--rollout", "100%"])
            .await?
            .success()?;
        baton(&daemon, &["flags", "off", "fresh_off"])
            .await?
            .success()?;
        baton(&daemon, &["flags", "set", "fresh_half", "--rollout", "50%"])
            .await?
            .success()?;
        let none: StaleFlags = json(&daemon, &["flags", "stale"]).await?;
        ensure!(none.days == 30 && none.flags.is_empty(), "{none:?}");
        let human = baton(&daemon, &["flags", "stale"]).await?.success()?;
        ensure!(human.stdout.contains("no stale flags"), "{}", human.stdout);
        for bad in ["0", "-3", "soon"] {
            refused(
                &daemon,
                &["flags", "stale", "--days", bad],
                "not a number of days",
            )
            .await?;
        }
        Ok(())
    }
    .await;
    if let Err(error) = outcome {
        return explain(Err(error), &daemon);
    }

    let state = daemon.keep_state();
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    daemon.wait_exit(Duration::from_secs(30)).await?;
    // As the daemon writes them (its own serialisation), or its next change
    // would see them as changed.
    add_old_flags(
        &daemon,
        45,
        &[(
            "old_off",
            r#"{"name":"old_off","enabled":false,"strategies":[],"variants":[]}"#,
        )],
    )?;
    add_old_flags(
        &daemon,
        40,
        &[
            (
                "old_on",
                r#"{"name":"old_on","enabled":true,"strategies":[{"name":"default","parameters":{}}],"variants":[]}"#,
            ),
            (
                "old_half",
                r#"{"name":"old_half","enabled":true,"strategies":[{"name":"flexibleRollout","parameters":{"rollout":"50","stickiness":"default"}}],"variants":[]}"#,
            ),
        ],
    )?;
    let again = Daemon::builder()
        .state_dir(daemon.state_dir())
        .start()
        .await?;
    let outcome = async {
        let stale: StaleFlags = json(&again, &["flags", "stale"]).await?;
        let seen: Vec<(&str, FlagState, u64, &str)> = stale
            .flags
            .iter()
            .map(|flag| {
                (
                    flag.name.as_str(),
                    flag.state,
                    flag.days,
                    flag.changed_by.as_str(),
                )
            })
            .collect();
        ensure!(
            seen == [
                ("old_off", FlagState::Off, 45, "carol"),
                ("old_on", FlagState::On, 40, "carol"),
            ],
            "oldest first, the 50% rollout and the fresh flags left out: {seen:?}"
        );
        let human = baton(&again, &["flags", "stale"]).await?.success()?;
        let lines: Vec<&str> = human.stdout.lines().collect();
        ensure!(
            lines.len() == 4
                && lines[1].starts_with("old_off")
                && lines[1].contains(" off ")
                && lines[1].contains("45")
                && lines[1].ends_with("carol")
                && lines[2].starts_with("old_on")
                && lines[2].contains(" on "),
            "{}",
            human.stdout
        );
        let fewer: StaleFlags = json(&again, &["flags", "stale", "--days", "42"]).await?;
        ensure!(
            fewer.flags.len() == 1 && fewer.flags[0].name == "old_off",
            "{fewer:?}"
        );
        let none: StaleFlags = json(&again, &["flags", "stale", "--days", "365"]).await?;
        ensure!(none.flags.is_empty(), "{none:?}");
        // A change makes a flag fresh again.
        let on: FlagChanged = json(&again, &["flags", "on", "old_off"]).await?;
        ensure!(on.touched == 1, "{on:?}");
        let after: StaleFlags = json(&again, &["flags", "stale"]).await?;
        let names: Vec<&str> = after.flags.iter().map(|flag| flag.name.as_str()).collect();
        ensure!(names == ["old_on"], "{names:?}");
        Ok(())
    }
    .await;
    let result = explain(outcome, &again);
    // The daemon stops before its state directory goes.
    drop(again);
    drop(state);
    result
}
