//! `baton budget`: an app's error budget under its `[slo]`: the objective,
//! the window, what it counted, what is left and how fast it burns.

use std::process::ExitCode;

use anyhow::bail;
use baton_api::{BudgetStatus, Client};

use crate::app_command::AppSelector;

/// `baton budget`.
#[derive(Debug, clap::Args)]
pub struct BudgetArgs {
    #[command(flatten)]
    pub selector: AppSelector,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

/// Runs `baton budget`.
pub async fn run(args: BudgetArgs, client: Client) -> anyhow::Result<ExitCode> {
    let app = args.selector.name()?;
    let status = client.status(&app).await?;
    let Some(budget) = status.budget else {
        bail!(
            "{app} has no [slo] in the baton.toml of its current release; add e.g.\n\n  [slo]\n  \
             availability = \"99.9%\"\n  window = \"30d\"\n\nand deploy it"
        );
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&budget)?);
    } else {
        print!("{}", render(&app, &budget));
    }
    Ok(ExitCode::SUCCESS)
}

/// The budget as lines for people.
pub fn render(app: &str, budget: &BudgetStatus) -> String {
    format!(
        "{app}  availability {} over {}\n\
         requests      {}\n\
         errors        {} ({:.1} allowed)\n\
         budget left   {}\n\
         burn rate     {:.2}x over 1h, {:.2}x over 6h (1x spends the budget in exactly one window)\n",
        budget.availability,
        budget.window,
        budget.requests,
        budget.errors,
        budget.allowed_errors,
        left(budget),
        budget.burn_rate_1h,
        budget.burn_rate_6h,
    )
}

/// `83.2%`, or `spent (-40.0%)` once nothing is left.
pub fn left(budget: &BudgetStatus) -> String {
    if !budget.left.is_finite() {
        return "spent".to_string();
    }
    let percent = budget.left * 100.0;
    if budget.is_spent() {
        format!("spent ({percent:.1}%)")
    } else {
        format!("{percent:.1}%")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_reads_as_text() {
        let mut budget = BudgetStatus {
            availability: "99.9%".parse().expect("percent"),
            window: baton_api::DurationText(std::time::Duration::from_secs(30 * 24 * 3600)),
            requests: 100_000,
            errors: 25,
            allowed_errors: 100.0,
            left: 0.75,
            burn_rate_1h: 2.5,
            burn_rate_6h: 0.5,
        };
        let text = render("web", &budget);
        for expected in [
            "web  availability 99.9% over 30days",
            "requests      100000",
            "errors        25 (100.0 allowed)",
            "budget left   75.0%",
            "2.50x over 1h, 0.50x over 6h",
        ] {
            assert!(text.contains(expected), "no {expected:?} in:\n{text}");
        }
        budget.left = -0.5;
        assert_eq!(left(&budget), "spent (-50.0%)");
        budget.left = f64::NEG_INFINITY;
        assert_eq!(left(&budget), "spent");
    }
}
