//! End-to-end `baton flags` against a real daemon: flags are created,
//! switched, listed, exported, deleted and imported back through the CLI;
//! every change makes the revision go up by one and leaves an audit entry
//! naming who did it, with the flag before and after; a change to what
//! already is changes nothing; bad input is refused with a message and
//! changes nothing at all; the flags and their revision survive a restart.

mod support;

use anyhow::{Context, ensure};
use baton_api::{FlagAuditEntry, FlagChanged, FlagInfo, FlagList};
use baton_testkit::{CommandOutput, Daemon};
use std::time::Duration;

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

        refused(&daemon, &["flags", "off", "nope"], "no flag named \"nope\"").await?;
        refused(
            &daemon,
            &["flags", "show", "nope"],
            "no flag named \"nope\"",
        )
        .await?;
        refused(
            &daemon,
            &["flags", "delete", "nope"],
            "no flag named \"nope\"",
        )
        .await?;
        refused(
            &daemon,
            &["flags", "set", "kept", "--rollout", "150%"],
            "not a percentage",
        )
        .await?;
        refused(
            &daemon,
            &["flags", "set", "kept", "--rollout", "lots"],
            "not a percentage",
        )
        .await?;
        refused(
            &daemon,
            &["flags", "set", "bad name", "--rollout", "5%"],
            "is not valid",
        )
        .await?;
        refused(
            &daemon,
            &["flags", "set", "kept", "--variants", "a:0,b:0"],
            "weigh nothing",
        )
        .await?;
        refused(
            &daemon,
            &["flags", "set", "kept", "--users", ""],
            "no strategy",
        )
        .await?;
        refused(&daemon, &["flags", "set", "kept"], "say what to set").await?;
        refused(&daemon, &["flags", "import", &not_json], "not Unleash's").await?;
        refused(
            &daemon,
            &["flags", "import", &no_switch],
            "missing field `enabled`",
        )
        .await?;
        refused(
            &daemon,
            &["flags", "import", &twice],
            "two flags are named \"x\"",
        )
        .await?;
        refused(&daemon, &["flags", "import", &missing], "cannot read").await?;

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
