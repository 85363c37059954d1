//! `baton status`: each app's running rollout (strategy, step, weight, time
//! to the next step) and every version's share, req/s, error rate and
//! latency, from the proxy's own numbers.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use baton_api::{AppStatus, Client, HistoryEntry, StatusRole, TrafficSummary};

use crate::app_command::{AppSelector, format_ms, format_time};

/// How often `--watch` redraws.
const REDRAW_EVERY: Duration = Duration::from_secs(1);

/// Clears the terminal and puts the cursor top left, so each redraw
/// replaces the last instead of scrolling.
const CLEAR_SCREEN: &str = "\x1b[2J\x1b[H";

/// `baton status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub selector: AppSelector,
    /// Print JSON instead of text (one app: an object; every app: an array;
    /// with --watch: one line per redraw)
    #[arg(long)]
    pub json: bool,
    /// Redraw every second until Ctrl-C
    #[arg(long, short)]
    pub watch: bool,
}

/// Runs `baton status`.
pub async fn run(args: StatusArgs, client: Client) -> anyhow::Result<ExitCode> {
    let chosen = args.selector.app.is_some() || args.selector.config.is_some();
    let app = if chosen || Path::new("baton.toml").exists() {
        Some(args.selector.name()?)
    } else {
        None
    };
    if !args.watch {
        let statuses = fetch(&client, app.as_deref()).await?;
        println!("{}", output(&statuses, app.is_some(), args.json, true)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut ticker = tokio::time::interval(REDRAW_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stdout = std::io::stdout();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        }
        let statuses = fetch(&client, app.as_deref()).await?;
        let text = output(&statuses, app.is_some(), args.json, false)?;
        if args.json {
            writeln!(stdout, "{text}")?;
        } else {
            write!(stdout, "{CLEAR_SCREEN}{text}")?;
        }
        stdout.flush()?;
    }
}

/// The status of `app`, or of every app the daemon knows.
async fn fetch(client: &Client, app: Option<&str>) -> anyhow::Result<Vec<AppStatus>> {
    if let Some(app) = app {
        return Ok(vec![client.status(app).await?]);
    }
    let mut statuses = Vec::new();
    for info in client.apps().await? {
        statuses.push(client.status(&info.name).await?);
    }
    Ok(statuses)
}

/// What is printed: JSON (an object for one app, an array for every app;
/// pretty unless it is one line of a watch), or the tables.
fn output(
    statuses: &[AppStatus],
    one_app: bool,
    json: bool,
    pretty: bool,
) -> anyhow::Result<String> {
    if json {
        let value = match statuses {
            [status] if one_app => serde_json::to_value(status)?,
            _ => serde_json::to_value(statuses)?,
        };
        return Ok(if pretty {
            serde_json::to_string_pretty(&value)?
        } else {
            serde_json::to_string(&value)?
        });
    }
    if statuses.is_empty() {
        return Ok("no apps deployed yet; `baton deploy` deploys one\n".to_string());
    }
    let tables: Vec<String> = statuses.iter().map(render).collect();
    Ok(tables.join("\n"))
}

/// One app's status as a compact table for people.
pub fn render(status: &AppStatus) -> String {
    let mut out = String::new();
    let release = status.current_release.as_deref().unwrap_or("none");
    let _ = write!(out, "{}  release {release}", status.app);
    if let Some(deploy) = &status.running_deploy {
        let _ = write!(out, "  ({deploy} running)");
    }
    out.push('\n');
    match &status.rollout {
        Some(rollout) => {
            let next = if rollout.paused {
                "paused: `baton rollout resume` goes on".to_string()
            } else {
                match rollout.next_step_in_s {
                    Some(0) => "next step as soon as the guardrails allow".to_string(),
                    Some(seconds) => format!("next step in {}", span(seconds)),
                    None => "no next step".to_string(),
                }
            };
            let _ = write!(
                out,
                "rollout  {}, {}, candidate at {}, {next}",
                rollout.strategy,
                rollout.phase,
                percent(rollout.weight_percent)
            );
            if let Some(seconds) = rollout.times_out_in_s {
                let _ = write!(out, ", times out in {}", span(seconds));
            }
            out.push('\n');
            let _ = writeln!(out, "         last decision: {}", rollout.reason);
        }
        None => out.push_str("rollout  none running\n"),
    }
    if let Some(budget) = &status.budget {
        let _ = writeln!(
            out,
            "budget   {} left of availability {} over {} (`baton budget` for burn rates)",
            crate::budget_command::left(budget),
            budget.availability,
            budget.window
        );
    }
    if let Some(last) = &status.last_deploy {
        let _ = writeln!(out, "last     {}", last_deploy(last));
    }
    if status.versions.is_empty() {
        let _ = writeln!(out, "no traffic is routed to {}", status.app);
        return out;
    }
    // Labels are release ids in app deploys (24 characters) and short
    // names in hand-made routes: size the column to what is there.
    let width = status
        .versions
        .iter()
        .map(|version| version.label.len())
        .max()
        .unwrap_or(0)
        .max("VERSION".len());
    let header = [
        "REQ/S", "ERRORS", "P50", "P95", "P99", "REQ/S 5m", "ERR 5m", "P50 5m", "P95 5m", "P99 5m",
    ]
    .map(str::to_string);
    let _ = writeln!(
        out,
        "{:<width$} {:<10} {:>7}  {}",
        "VERSION",
        "ROLE",
        "WEIGHT",
        traffic_columns(&header)
    );
    for version in &status.versions {
        let role = match version.role {
            StatusRole::Stable => "stable",
            StatusRole::Candidate => "candidate",
            StatusRole::Draining => "draining",
        };
        let weight = version
            .weight_percent
            .map(percent)
            .unwrap_or_else(|| "-".to_string());
        let [minute, five] = [&version.last_minute, &version.last_5_minutes].map(|traffic| {
            [
                rate(traffic),
                errors(traffic),
                latency(traffic, traffic.p50_ms),
                latency(traffic, traffic.p95_ms),
                latency(traffic, traffic.p99_ms),
            ]
        });
        let mut cells = minute.to_vec();
        cells.extend(five);
        let _ = writeln!(
            out,
            "{:<width$} {:<10} {:>7}  {}",
            version.label,
            role,
            weight,
            traffic_columns(&cells)
        );
    }
    out.push_str("(REQ/S to P99: the last minute; 5m: the last five minutes)\n");
    out
}

/// `deploy #12 succeeded at 2026-11-22 07:56:54 by ana: release … in 2.1 s`.
fn last_deploy(entry: &HistoryEntry) -> String {
    let mut text = format!(
        "{} #{} {} at {} by {}",
        entry.kind.as_str(),
        entry.id,
        entry.outcome.as_str(),
        format_time(entry.started_at_ms),
        entry.user
    );
    if !entry.release.is_empty() {
        let _ = write!(text, ": release {}", entry.release);
    }
    if let Some(took) = entry.duration_ms {
        let _ = write!(text, " in {}", format_ms(took));
    }
    text
}

/// The ten traffic cells of a row (five for the last minute, five for the
/// last five minutes), right-aligned under their headers.
fn traffic_columns(cells: &[String]) -> String {
    let mut line = String::new();
    for (index, cell) in cells.iter().enumerate() {
        let width = if index % 5 == 0 { 8 } else { 7 };
        let gap = if index == 5 {
            "  "
        } else if index == 0 {
            ""
        } else {
            " "
        };
        let _ = write!(line, "{gap}{cell:>width$}");
    }
    line
}

/// `10%`, `0.5%`: weights have at most two decimals.
fn percent(value: f64) -> String {
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

fn span(seconds: u64) -> String {
    humantime::format_duration(Duration::from_secs(seconds)).to_string()
}

fn rate(traffic: &TrafficSummary) -> String {
    format!("{:.1}", traffic.req_per_s)
}

pub(crate) fn errors(traffic: &TrafficSummary) -> String {
    if traffic.requests == 0 {
        return "-".to_string();
    }
    format!("{:.2}%", traffic.error_rate * 100.0)
}

/// A quantile, or `-` when no request gave one.
pub(crate) fn latency(traffic: &TrafficSummary, ms: f64) -> String {
    if traffic.requests == 0 {
        return "-".to_string();
    }
    if ms < 10.0 {
        format!("{ms:.1}ms")
    } else {
        format!("{ms:.0}ms")
    }
}

#[cfg(test)]
mod tests {
    use baton_api::{RolloutStatus, VersionStatus};

    use super::*;

    fn traffic(requests: u64, req_per_s: f64, error_rate: f64, p99_ms: f64) -> TrafficSummary {
        TrafficSummary {
            requests,
            req_per_s,
            error_rate,
            p50_ms: 1.25,
            p95_ms: p99_ms / 2.0,
            p99_ms,
        }
    }

    fn canary() -> AppStatus {
        AppStatus {
            app: "shop".to_string(),
            current_release: Some("20261122T021500Z-3f9a2c1".to_string()),
            running_deploy: Some("deploy #7".to_string()),
            rollout: Some(RolloutStatus {
                strategy: "canary".to_string(),
                phase: "step 1 of 3 (10%)".to_string(),
                weight_percent: 10.0,
                paused: false,
                next_step_in_s: Some(125),
                times_out_in_s: Some(1_185),
                reason: "step 1 of 3 (10%): 5s of 2m, every guardrail holds".to_string(),
            }),
            versions: vec![
                VersionStatus {
                    label: "v1".to_string(),
                    role: StatusRole::Stable,
                    weight_percent: Some(90.0),
                    last_minute: traffic(5_400, 90.0, 0.0, 4.5),
                    last_5_minutes: traffic(27_000, 90.0, 0.0001, 4.9),
                },
                VersionStatus {
                    label: "v2".to_string(),
                    role: StatusRole::Candidate,
                    weight_percent: Some(10.0),
                    last_minute: traffic(600, 10.0, 0.0125, 1_250.0),
                    last_5_minutes: traffic(600, 2.0, 0.0125, 1_250.0),
                },
            ],
            budget: None,
            last_deploy: Some(HistoryEntry {
                id: 6,
                app: "shop".to_string(),
                kind: baton_api::DeployKind::Deploy,
                release: "20261122T021500Z-3f9a2c1".to_string(),
                previous_release: None,
                started_at_ms: 1_795_313_700_000,
                duration_ms: Some(2_100),
                user: "ana".to_string(),
                source: "/srv/shop".to_string(),
                outcome: baton_api::DeployOutcomeKind::Succeeded,
                reason: None,
                stages: Vec::new(),
                traffic: None,
            }),
        }
    }

    #[test]
    fn a_canary_shows_its_step_weight_timers_and_each_version() {
        let text = render(&canary());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "shop  release 20261122T021500Z-3f9a2c1  (deploy #7 running)"
        );
        assert_eq!(
            lines[1],
            "rollout  canary, step 1 of 3 (10%), candidate at 10%, next step in 2m 5s, \
             times out in 19m 45s"
        );
        assert_eq!(
            lines[2],
            "         last decision: step 1 of 3 (10%): 5s of 2m, every guardrail holds"
        );
        assert_eq!(
            lines[3],
            "last     deploy #6 succeeded at 2026-11-22 02:15:00 by ana: release \
             20261122T021500Z-3f9a2c1 in 2.1 s"
        );
        assert!(lines[4].starts_with("VERSION"), "{text}");
        let stable: Vec<&str> = lines[5].split_whitespace().collect();
        assert_eq!(
            stable,
            [
                "v1", "stable", "90%", "90.0", "0.00%", "1.2ms", "2.2ms", "4.5ms", "90.0", "0.01%",
                "1.2ms", "2.5ms", "4.9ms"
            ]
        );
        let candidate: Vec<&str> = lines[6].split_whitespace().collect();
        assert_eq!(
            candidate,
            [
                "v2",
                "candidate",
                "10%",
                "10.0",
                "1.25%",
                "1.2ms",
                "625ms",
                "1250ms",
                "2.0",
                "1.25%",
                "1.2ms",
                "625ms",
                "1250ms"
            ]
        );
    }

    #[test]
    fn a_paused_rollout_says_how_to_go_on() {
        let mut status = canary();
        if let Some(rollout) = status.rollout.as_mut() {
            rollout.paused = true;
            rollout.phase = "paused at step 1 of 3 (10%)".to_string();
            rollout.next_step_in_s = None;
            rollout.times_out_in_s = None;
        }
        let text = render(&status);
        assert!(
            text.contains("paused at step 1 of 3 (10%), candidate at 10%, paused: `baton rollout resume` goes on\n"),
            "{text}"
        );
        assert!(!text.contains("times out"), "{text}");
    }

    #[test]
    fn an_idle_app_without_a_rollout_shows_dashes_not_zeros() {
        let status = AppStatus {
            app: "blog".to_string(),
            current_release: None,
            running_deploy: None,
            rollout: None,
            versions: vec![VersionStatus {
                label: "20261122T041946Z-cb74c3b".to_string(),
                role: StatusRole::Stable,
                weight_percent: Some(100.0),
                last_minute: TrafficSummary::default(),
                last_5_minutes: TrafficSummary::default(),
            }],
            budget: None,
            last_deploy: None,
        };
        let text = render(&status);
        assert!(
            text.starts_with("blog  release none\nrollout  none running\n"),
            "{text}"
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[2].find("ROLE"), lines[3].find("stable"), "{text}");
        let row: Vec<&str> = lines[3].split_whitespace().collect();
        assert_eq!(
            row,
            [
                "20261122T041946Z-cb74c3b",
                "stable",
                "100%",
                "0.0",
                "-",
                "-",
                "-",
                "-",
                "0.0",
                "-",
                "-",
                "-",
                "-"
            ]
        );
    }

    #[test]
    fn an_app_with_an_slo_shows_its_budget_left() {
        let status = AppStatus {
            budget: Some(baton_api::BudgetStatus {
                availability: "99.9%".parse().expect("percent"),
                window: baton_api::DurationText(Duration::from_secs(3600)),
                requests: 1_000,
                errors: 2,
                allowed_errors: 1.0,
                left: -1.0,
                burn_rate_1h: 2.0,
                burn_rate_6h: 2.0,
            }),
            ..canary()
        };
        let text = render(&status);
        assert!(
            text.contains("budget   spent (-100.0%) left of availability 99.9% over 1h"),
            "{text}"
        );
        assert!(!render(&canary()).contains("budget"));
    }

    #[test]
    fn an_app_without_a_route_says_so() {
        let status = AppStatus {
            versions: Vec::new(),
            rollout: None,
            ..canary()
        };
        assert!(render(&status).ends_with("no traffic is routed to shop\n"));
    }

    #[test]
    fn weights_keep_their_decimals_only_when_they_have_some() {
        assert_eq!(percent(10.0), "10%");
        assert_eq!(percent(0.5), "0.5%");
        assert_eq!(percent(0.25), "0.25%");
        assert_eq!(percent(100.0), "100%");
    }

    #[test]
    fn json_is_one_object_for_one_app_and_an_array_for_all() {
        let one = output(&[canary()], true, true, false).unwrap();
        let value: serde_json::Value = serde_json::from_str(&one).unwrap();
        assert_eq!(value["rollout"]["strategy"], "canary");
        assert_eq!(value["versions"][1]["role"], "candidate");
        let all = output(&[canary()], false, true, false).unwrap();
        let value: serde_json::Value = serde_json::from_str(&all).unwrap();
        assert_eq!(value[0]["app"], "shop");
    }
}
