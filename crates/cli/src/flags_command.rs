//! `baton flags …`: the host's feature flags, through the control socket.
//! Every change is in force for every evaluation on the host (OFREP and
//! the proxy's injection) by the time the command returns.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use baton_api::{
    Client, DEFAULT_STALE_DAYS, FlagActor, FlagAuditEntry, FlagChanged, FlagImportRequest,
    FlagInfo, FlagList, FlagSetRequest, FlagSettings, FlagState, StaleFlags, VariantWeight,
};
use clap::Subcommand;
use serde::Serialize;

use crate::app_command::{format_time, user_name};

/// The flag subcommands.
#[derive(Debug, Subcommand)]
pub enum FlagsCommand {
    /// Show every flag: its switch and who it is on for
    List(OutputArgs),
    /// Show one flag in full
    Show(NameArgs),
    /// Create or change a flag (each option replaces its own part; a new flag starts on)
    Set(SetArgs),
    /// Switch a flag on (its strategies decide for whom)
    On(NameArgs),
    /// Switch a flag off for everyone: the kill switch, in force when this returns
    Off(NameArgs),
    /// Remove a flag
    Delete(NameArgs),
    /// Replace every flag and segment with those of an Unleash export (all or nothing)
    Import(ImportArgs),
    /// Write every flag as Unleash's client features JSON
    Export(ExportArgs),
    /// Show who changed what and when, newest first
    History(HistoryArgs),
    /// List flags fully on or fully off and unchanged for longer than --days, to remove from code
    Stale(StaleArgs),
}

/// `--json`.
#[derive(Debug, clap::Args)]
pub struct OutputArgs {
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

/// A flag's name.
#[derive(Debug, clap::Args)]
pub struct NameArgs {
    /// The flag
    pub name: String,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Options of `flags set`.
#[derive(Debug, clap::Args)]
pub struct SetArgs {
    /// The flag (letters, digits, '-', '_', '.', '~')
    pub name: String,
    /// On for this share of users, e.g. 5% (Unleash flexibleRollout, default stickiness)
    #[arg(long, value_name = "PERCENT", value_parser = parse_percent)]
    pub rollout: Option<f64>,
    /// Always on for these user ids, e.g. alice,bob (Unleash userWithId); '' removes the list
    #[arg(long, value_name = "IDS", value_parser = parse_users)]
    pub users: Option<Users>,
    /// The flag's variants and weights, e.g. a:50,b:50; '' removes them
    #[arg(long, value_name = "NAME:WEIGHT,...", value_parser = parse_variants)]
    pub variants: Option<Variants>,
    /// A description for people; '' removes it
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// A list of user ids, as `--users` gives it.
#[derive(Debug, Clone)]
pub struct Users(Vec<String>);

/// Variants and weights, as `--variants` gives them.
#[derive(Debug, Clone)]
pub struct Variants(Vec<VariantWeight>);

/// Options of `flags import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Unleash's client features JSON (`/api/client/features`), or - for standard input
    pub file: PathBuf,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Options of `flags export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Where to write [default: standard output]
    pub file: Option<PathBuf>,
}

/// Options of `flags history`.
#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// Only this flag [default: every flag and segment]
    pub name: Option<String>,
    /// How many entries
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Options of `flags stale`.
#[derive(Debug, clap::Args)]
pub struct StaleArgs {
    /// Report flags unchanged for more than this many days
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_STALE_DAYS,
        value_parser = parse_days,
        allow_hyphen_values = true
    )]
    pub days: u32,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs a flags subcommand against the daemon.
pub async fn run(command: FlagsCommand, client: Client) -> anyhow::Result<ExitCode> {
    let actor = || FlagActor { user: user_name() };
    match command {
        FlagsCommand::List(output) => {
            let list = client.flags().await?;
            print(&list, output.json, print_list)?;
        }
        FlagsCommand::Show(args) => {
            let flag = client.flag(&args.name).await?;
            print(&flag, args.output.json, print_flag)?;
        }
        FlagsCommand::Set(args) => {
            check(&args)?;
            let request = FlagSetRequest {
                user: user_name(),
                settings: FlagSettings {
                    description: args.description,
                    rollout_percent: args.rollout,
                    users: args.users.map(|users| users.0),
                    variants: args.variants.map(|variants| variants.0),
                },
            };
            let changed = client.set_flag(&args.name, &request).await?;
            print_changed(&changed, &args.name, "set", args.output.json)?;
        }
        FlagsCommand::On(args) => {
            let changed = client.switch_flag(&args.name, true, &actor()).await?;
            print_changed(&changed, &args.name, "on", args.output.json)?;
        }
        FlagsCommand::Off(args) => {
            let changed = client.switch_flag(&args.name, false, &actor()).await?;
            print_changed(&changed, &args.name, "off", args.output.json)?;
        }
        FlagsCommand::Delete(args) => {
            let changed = client.delete_flag(&args.name, &actor()).await?;
            print_changed(&changed, &args.name, "deleted", args.output.json)?;
        }
        FlagsCommand::Import(args) => {
            let document = read_document(&args.file)?;
            let request = FlagImportRequest {
                user: user_name(),
                document,
            };
            let changed = client.import_flags(&request).await?;
            print_changed(
                &changed,
                &args.file.display().to_string(),
                "imported",
                args.output.json,
            )?;
        }
        FlagsCommand::Export(args) => {
            let export = client.export_flags().await?;
            match &args.file {
                Some(path) => {
                    std::fs::write(path, format!("{}\n", export.document))
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!(
                        "exported revision {} to {}",
                        export.revision,
                        path.display()
                    );
                }
                None => println!("{}", export.document),
            }
        }
        FlagsCommand::History(args) => {
            let entries = client
                .flag_history(args.name.as_deref(), args.limit)
                .await?;
            print(&entries, args.output.json, |entries| print_history(entries))?;
        }
        FlagsCommand::Stale(args) => {
            let stale = client.stale_flags(args.days).await?;
            // A report, not a check: stale flags are no failure.
            print(&stale, args.output.json, print_stale)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read_document(path: &PathBuf) -> anyhow::Result<String> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the flags from standard input")?;
        return Ok(text);
    }
    std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read {}; give a file holding Unleash's client features JSON",
            path.display()
        )
    })
}

fn print<T: Serialize + ?Sized>(value: &T, json: bool, human: impl Fn(&T)) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        human(value);
    }
    Ok(())
}

fn print_list(list: &FlagList) {
    println!(
        "revision {}, {} flag{}, {} segment{}",
        list.revision,
        list.flags.len(),
        plural(list.flags.len()),
        list.segments,
        plural(list.segments)
    );
    if list.flags.is_empty() {
        println!("no flags yet: `baton flags set NAME --rollout 5%` creates one");
        return;
    }
    let width = name_width(list.flags.iter().map(|flag| flag.name.as_str()));
    println!("{:<width$}  STATE  REV  ON FOR", "FLAG");
    for flag in &list.flags {
        let warned = if flag.warnings.is_empty() {
            ""
        } else {
            "  (!)"
        };
        println!(
            "{:<width$}  {:<5}  {:<3}  {}{warned}",
            flag.name,
            state(flag),
            flag.revision,
            on_for(flag)
        );
    }
}

/// The width of a FLAG column holding `names`.
fn name_width<'a>(names: impl Iterator<Item = &'a str>) -> usize {
    names.map(str::len).max().unwrap_or(0).max("FLAG".len())
}

fn state(flag: &FlagInfo) -> &'static str {
    if flag.enabled { "on" } else { "off" }
}

/// Who the flag is on for, on one line.
fn on_for(flag: &FlagInfo) -> String {
    let mut text = if flag.strategies.is_empty() {
        "everyone".to_string()
    } else {
        flag.strategies.join("; ")
    };
    if !flag.variants.is_empty() {
        let variants: Vec<String> = flag
            .variants
            .iter()
            .map(|variant| format!("{} {}", variant.name, variant.weight))
            .collect();
        text.push_str(&format!("; variants {}", variants.join(", ")));
    }
    text
}

fn print_flag(flag: &FlagInfo) {
    println!("{}: {}", flag.name, state(flag));
    if let Some(description) = &flag.description {
        println!("  description: {description}");
    }
    if flag.strategies.is_empty() {
        println!("  on for:      everyone (no strategy)");
    } else {
        for (index, strategy) in flag.strategies.iter().enumerate() {
            let label = if index == 0 { "on for:" } else { "or:" };
            println!("  {label:<12} {strategy}");
        }
    }
    for variant in &flag.variants {
        println!(
            "  variant:     {} (weight {})",
            variant.name, variant.weight
        );
    }
    println!(
        "  changed:     revision {}, {}",
        flag.revision,
        format_time(flag.updated_at_ms)
    );
    for warning in &flag.warnings {
        println!("  warning:     {warning}");
    }
}

fn print_changed(
    changed: &FlagChanged,
    subject: &str,
    verb: &str,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(changed)?);
        return Ok(());
    }
    if !changed.changed {
        println!(
            "{subject}: already so, nothing changed (revision {})",
            changed.revision
        );
    } else if let Some(flag) = &changed.flag {
        let now = if flag.enabled {
            format!("on for {}", on_for(flag))
        } else {
            "off for everyone".to_string()
        };
        println!(
            "{}: {verb} (revision {}); {now}",
            flag.name, changed.revision
        );
    } else {
        println!(
            "{subject}: {verb} (revision {}, {} flag{} or segment{} changed)",
            changed.revision,
            changed.touched,
            plural(changed.touched),
            plural(changed.touched)
        );
    }
    for warning in &changed.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(())
}

fn print_history(entries: &[FlagAuditEntry]) {
    if entries.is_empty() {
        println!("no changes yet");
        return;
    }
    println!("REV  WHEN                 WHO           ACTION  WHAT");
    for entry in entries {
        let subject = if entry.subject == "flag" {
            entry.name.clone()
        } else {
            format!("{} {}", entry.subject, entry.name)
        };
        println!(
            "{:<4} {:<20} {:<13} {:<7} {subject}: {}",
            entry.revision,
            format_time(entry.at_ms),
            entry.who,
            entry.action,
            change(entry)
        );
    }
}

fn print_stale(stale: &StaleFlags) {
    if stale.flags.is_empty() {
        println!(
            "no stale flags: none has been fully on or fully off, unchanged, for more than {} day{}",
            stale.days,
            plural(usize::try_from(stale.days).unwrap_or(usize::MAX))
        );
        return;
    }
    let width = name_width(stale.flags.iter().map(|flag| flag.name.as_str()));
    println!("{:<width$}  STATE  DAYS  CHANGED BY", "FLAG");
    for flag in &stale.flags {
        let state = match flag.state {
            FlagState::On => "on",
            FlagState::Off => "off",
        };
        println!(
            "{:<width$}  {state:<5}  {:>4}  {}",
            flag.name, flag.days, flag.changed_by
        );
    }
    println!(
        "{} flag{} fully on or off, unchanged for more than {} days: take {} out of the code, \
         then `baton flags delete`",
        stale.flags.len(),
        plural(stale.flags.len()),
        stale.days,
        if stale.flags.len() == 1 { "it" } else { "them" }
    );
}

/// What one entry did to its flag, in a few words.
fn change(entry: &FlagAuditEntry) -> &'static str {
    let enabled = |definition: &Option<serde_json::Value>| {
        definition
            .as_ref()
            .and_then(|value| value.get("enabled"))
            .and_then(serde_json::Value::as_bool)
    };
    match (&entry.before, &entry.after) {
        (None, _) => "created",
        (_, None) => "removed",
        _ => match (enabled(&entry.before), enabled(&entry.after)) {
            (Some(true), Some(false)) => "switched off",
            (Some(false), Some(true)) => "switched on",
            _ => "changed",
        },
    }
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

/// `5%`, `5` or `12.5%`, from 0 to 100.
fn parse_percent(text: &str) -> Result<f64, String> {
    let number = text.trim().trim_end_matches('%').trim();
    match number.parse::<f64>() {
        Ok(percent) if (0.0..=100.0).contains(&percent) => Ok(percent),
        _ => Err(format!(
            "{text:?} is not a percentage from 0% to 100%; write e.g. 5% or 12.5%"
        )),
    }
}

/// `--days`: a whole number of days, 1 or more.
fn parse_days(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(days) if days >= 1 => Ok(days),
        _ => Err(format!(
            "{text:?} is not a number of days; give a whole number, 1 or more (default {DEFAULT_STALE_DAYS})"
        )),
    }
}

/// `alice,bob`; `''` is the empty list.
fn parse_users(text: &str) -> Result<Users, String> {
    Ok(Users(
        text.split(',')
            .map(str::trim)
            .filter(|user| !user.is_empty())
            .map(str::to_string)
            .collect(),
    ))
}

/// `a:50,b:50`; `''` is the empty list.
fn parse_variants(text: &str) -> Result<Variants, String> {
    let mut variants = Vec::new();
    for entry in text
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
    {
        let Some((name, weight)) = entry.rsplit_once(':') else {
            return Err(format!(
                "variant {entry:?} has no weight; write NAME:WEIGHT, e.g. a:50,b:50"
            ));
        };
        let weight = weight.trim().parse::<u32>().map_err(|_| {
            format!("the weight of variant {name:?} ({weight:?}) is not a whole number")
        })?;
        variants.push(VariantWeight {
            name: name.trim().to_string(),
            weight,
        });
    }
    Ok(Variants(variants))
}

/// Refuses a `set` that says nothing to set, before anything is sent.
fn check(args: &SetArgs) -> anyhow::Result<()> {
    if args.rollout.is_none()
        && args.users.is_none()
        && args.variants.is_none()
        && args.description.is_none()
    {
        bail!("say what to set: --rollout, --users, --variants or --description");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_read_with_or_without_the_sign() {
        assert_eq!(parse_percent("5%"), Ok(5.0));
        assert_eq!(parse_percent("12.5"), Ok(12.5));
        assert_eq!(parse_percent("100%"), Ok(100.0));
        for bad in ["101%", "-1%", "five", "", "5%%x"] {
            let error = parse_percent(bad).unwrap_err();
            assert!(error.contains("not a percentage"), "{bad}: {error}");
        }
    }

    #[test]
    fn days_are_whole_and_positive() {
        assert_eq!(parse_days("30"), Ok(30));
        assert_eq!(parse_days(" 1 "), Ok(1));
        for bad in ["0", "-3", "thirty", "", "1.5", "99999999999"] {
            let error = parse_days(bad).unwrap_err();
            assert!(error.contains("not a number of days"), "{bad}: {error}");
        }
    }

    #[test]
    fn variants_and_users_read_as_lists() {
        let variants = parse_variants("a:50, b:50").unwrap().0;
        assert_eq!(variants.len(), 2);
        assert_eq!((variants[1].name.as_str(), variants[1].weight), ("b", 50));
        assert!(parse_variants("").unwrap().0.is_empty());
        assert!(parse_variants("a").unwrap_err().contains("no weight"));
        assert!(parse_variants("a:x").unwrap_err().contains("whole number"));
        assert_eq!(parse_users("alice, bob,").unwrap().0, ["alice", "bob"]);
        assert!(parse_users("").unwrap().0.is_empty());
    }
}
