//! End-to-end error budget: an app whose `[slo]` allows 0.1% of failed
//! requests serves a version that fails half of them, so its budget is
//! spent (a one-hour window and the live minute make that quick); the next
//! deploy is refused without `--force`, goes through with it, and the
//! reason is in `baton history`.

mod support;

use anyhow::{Context, ensure};
use baton_api::{AppStatus, BudgetStatus};
use baton_testkit::{AppSource, Daemon};

use support::{deploy_app as deploy, deploy_app_args, ensure_mentions, explain, get_once};

const REASON: &str = "hotfix for the failing requests";

#[tokio::test(flavor = "multi_thread")]
async fn a_spent_budget_refuses_a_deploy_unless_forced_and_history_keeps_why() -> anyhow::Result<()>
{
    let app = AppSource::builder("budget", "v1")
        .web_line("env = { ERROR_RATE = \"0.5\" }")
        .extra("[slo]\navailability = \"99.9%\"\nwindow = \"1h\"\n")
        .build()?;
    let config = app.config_path().display().to_string();
    let daemon = Daemon::start().await?;
    let outcome = async {
        deploy(&daemon, &app).await?.success()?;
        let (mut ok, mut failed) = (0, 0);
        for _ in 0..40 {
            if get_once(daemon.http_address(), "/")
                .await?
                .status
                .is_success()
            {
                ok += 1;
            } else {
                failed += 1;
            }
        }
        ensure!(ok > 0 && failed > 0, "{ok} ok and {failed} failed");

        let output = daemon
            .baton(&["budget", "--config", &config, "--json"])
            .await?
            .success()?;
        let budget: BudgetStatus = serde_json::from_str(&output.stdout)
            .with_context(|| format!("baton budget --json printed:\n{}", output.stdout))?;
        ensure!(budget.is_spent(), "the budget is not spent: {budget:?}");
        ensure!(
            budget.requests >= 40 && budget.errors >= failed,
            "{ok} ok and {failed} failed, but {budget:?}"
        );
        ensure!(budget.burn_rate_1h > 100.0, "{budget:?}");
        let text = daemon
            .baton(&["budget", "--config", &config])
            .await?
            .success()?;
        ensure_mentions(
            &text.stdout,
            &["availability 99.9% over 1h", "budget left   spent"],
        )?;
        let output = daemon
            .baton(&["status", "--config", &config, "--json"])
            .await?
            .success()?;
        let status: AppStatus = serde_json::from_str(&output.stdout)?;
        ensure!(
            status.budget.is_some_and(|b| b.is_spent()),
            "{}",
            output.stdout
        );
        let text = daemon
            .baton(&["status", "--config", &config])
            .await?
            .success()?;
        ensure_mentions(&text.stdout, &["budget   spent"])?;

        let serving = app.current_release();
        app.set_version("v2")?;
        let refused = deploy(&daemon, &app).await?;
        ensure!(
            !refused.status.success(),
            "deployed on a spent budget:\n{}",
            refused.stdout
        );
        ensure_mentions(&refused.stderr, &["error budget is spent", "--force"])?;
        ensure!(
            app.current_release() == serving,
            "a refused deploy changed the release"
        );

        let mut args = deploy_app_args(&app);
        args.extend(["--force".to_string(), REASON.to_string()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        daemon.baton(&args).await?.success()?;
        ensure!(
            app.current_release() != serving,
            "the forced deploy did not switch"
        );
        let history = daemon
            .baton(&["history", "--config", &config])
            .await?
            .success()?;
        ensure_mentions(&history.stdout, &["error budget spent", REASON])?;
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}
