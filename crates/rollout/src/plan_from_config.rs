//! From `[rollout]` as read from `baton.toml` to the plan `decide` runs.

use baton_api::{
    GuardrailConfig, GuardrailLimit, GuardrailMetric, Percent, RolloutSection, RolloutStrategy,
};

use crate::{Guardrail, Metric, PlanError, Ratio, RolloutPlan, ShadowPlan, Strategy, Weight};

impl RolloutPlan {
    /// The plan for `section`, with `strategy_override` (the name given to
    /// `baton deploy --strategy`) in place of its strategy when present.
    ///
    /// No guardrails means [`Guardrail::defaults`]; an unset bake follows
    /// the strategy actually used ([`RolloutSection::bake_for`]). The plan
    /// is validated, and every error names the key to fix.
    pub fn from_config(
        section: &RolloutSection,
        strategy_override: Option<&str>,
    ) -> Result<RolloutPlan, String> {
        let chosen = match strategy_override {
            Some(name) => name
                .parse::<RolloutStrategy>()
                .map_err(|error| format!("--strategy: {error}"))?,
            None => section.strategy,
        };
        let strategy = match chosen {
            RolloutStrategy::Replace => Strategy::Replace,
            RolloutStrategy::BlueGreen => Strategy::BlueGreen,
            RolloutStrategy::Canary => Strategy::Canary {
                steps: section
                    .steps
                    .iter()
                    .map(|&step| weight("steps", step))
                    .collect::<Result<_, _>>()?,
            },
        };
        // A share of 0% is how the file says "no shadow".
        let shadow = if section.shadow.is_zero() {
            None
        } else {
            Some(ShadowPlan {
                share: weight("shadow", section.shadow)?,
                duration: section.shadow_duration.get(),
            })
        };
        let guardrails = if section.guardrails.is_empty() {
            Guardrail::defaults()
        } else {
            section
                .guardrails
                .iter()
                .enumerate()
                .map(|(index, config)| guardrail(index + 1, config))
                .collect::<Result<_, _>>()?
        };
        let plan = RolloutPlan {
            strategy,
            step_duration: section.step_duration.get(),
            step_timeout: section.step_timeout.get(),
            min_requests: section.min_requests,
            bake: section.bake_for(chosen),
            shadow,
            guardrails,
        };
        plan.validate()
            .map_err(|error| format!("{}: {error}", key_of(&error)))?;
        Ok(plan)
    }
}

/// The `baton.toml` key a plan error is about.
fn key_of(error: &PlanError) -> String {
    match error {
        PlanError::NoSteps
        | PlanError::StepNotIncreasing { .. }
        | PlanError::LastStepNotFull { .. } => "[rollout] steps".to_string(),
        PlanError::TimeoutBeforeStepEnds { .. } => "[rollout] step_timeout".to_string(),
        PlanError::NoMinRequests => "[rollout] min_requests".to_string(),
        PlanError::EmptyWindow { number, .. } => {
            format!("[[rollout.guardrails]] {number} window")
        }
        PlanError::UnnamedExternal { number } => {
            format!("[[rollout.guardrails]] {number} query or json_path")
        }
        PlanError::ExternalLimits { number, .. } => {
            format!("[[rollout.guardrails]] {number} min/max")
        }
    }
}

/// A share of live or mirrored traffic: the proxy splits in basis points,
/// so anything finer than 0.01% cannot be honoured.
fn weight(key: &str, percent: Percent) -> Result<Weight, String> {
    let parts_per_million = percent.parts_per_million();
    u16::try_from(parts_per_million / 100)
        .ok()
        .filter(|_| parts_per_million.is_multiple_of(100))
        .and_then(Weight::from_basis_points)
        .ok_or_else(|| {
            format!("[rollout] {key}: {percent} is finer than traffic can be split (0.01%)")
        })
}

fn guardrail(number: usize, config: &GuardrailConfig) -> Result<Guardrail, String> {
    let name = config.metric.name();
    let wrong = |problem: String| format!("[[rollout.guardrails]] {number} ({name}): {problem}");
    let only_max = || {
        if config.min.is_some() {
            Err(wrong("takes only max, not min".to_string()))
        } else {
            Ok(())
        }
    };
    let rate = || -> Result<Ratio, String> {
        only_max()?;
        match config.max {
            Some(GuardrailLimit::Percent(max)) => {
                Ratio::from_parts_per_million(max.parts_per_million())
                    .ok_or_else(|| wrong(format!("max = \"{max}\" is more than 100%")))
            }
            Some(other) => Err(wrong(format!(
                "max = {other} is not a percentage; write e.g. max = \"1%\""
            ))),
            None => Err(wrong("needs max, e.g. max = \"1%\"".to_string())),
        }
    };
    let number_of = |key: &str, limit: Option<GuardrailLimit>| match limit {
        None => Ok(None),
        Some(GuardrailLimit::Number(value)) => Ok(Some(value)),
        Some(other) => Err(wrong(format!(
            "{key} = {other} is not a number; write it without quotes, e.g. {key} = 0.95"
        ))),
    };
    let metric = match config.metric {
        GuardrailMetric::ErrorRate => Metric::ErrorRate { max: rate()? },
        GuardrailMetric::ErrorRateVsStable => Metric::ErrorRateVsStable { max: rate()? },
        GuardrailMetric::ShadowMismatchRate => Metric::ShadowMismatchRate { max: rate()? },
        GuardrailMetric::P99Latency => {
            only_max()?;
            match config.max {
                Some(GuardrailLimit::Duration(max)) => Metric::P99Latency { max: max.get() },
                Some(other) => {
                    return Err(wrong(format!(
                        "max = {other} is not a duration; write e.g. max = \"1200ms\""
                    )));
                }
                None => return Err(wrong("needs max, e.g. max = \"1200ms\"".to_string())),
            }
        }
        GuardrailMetric::Prometheus | GuardrailMetric::Http => {
            // What the number is called in verdicts: the query or the JSON
            // path it is read from, which is what the user wrote to get it,
            // and where from, so a rollback names the source to look at.
            // Without a query or path it stays unnamed, which is refused.
            let (what, place) = if config.metric == GuardrailMetric::Prometheus {
                (
                    &config.query,
                    config.server.as_ref().map(|s| format!("on prometheus {s}")),
                )
            } else {
                (
                    &config.json_path,
                    config.url.as_ref().map(|url| format!("from {url}")),
                )
            };
            let name = match (what, place) {
                (Some(what), Some(place)) => format!("{what} {place}"),
                (Some(what), None) => what.clone(),
                (None, _) => String::new(),
            };
            Metric::External {
                name,
                min: number_of("min", config.min)?,
                max: number_of("max", config.max)?,
            }
        }
    };
    Ok(Guardrail {
        metric,
        window: config.window.get(),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use baton_api::AppConfig;

    use super::*;

    fn section(rollout: &str) -> RolloutSection {
        let text =
            format!("[app]\nname = \"a\"\nroot = \"/r\"\n[web]\ncommand = \"./s\"\n{rollout}");
        AppConfig::parse(&text, Path::new("/app/baton.toml"))
            .unwrap()
            .rollout
    }

    fn weights(percents: &[u16]) -> Vec<Weight> {
        percents
            .iter()
            .map(|&percent| Weight::from_percent(percent).unwrap())
            .collect()
    }

    #[test]
    fn no_rollout_section_is_a_replace_without_bake() {
        let plan = RolloutPlan::from_config(&section(""), None).unwrap();
        assert_eq!(plan.strategy, Strategy::Replace);
        assert_eq!(plan.bake, Duration::ZERO);
        assert_eq!(plan.step_duration, Duration::from_secs(120));
        assert_eq!(plan.step_timeout, Duration::from_secs(900));
        assert_eq!(plan.min_requests, 100);
        assert_eq!(plan.shadow, None);
        assert_eq!(plan.guardrails, Guardrail::defaults());
    }

    #[test]
    fn each_strategy_converts() {
        let canary = RolloutPlan::from_config(
            &section("[rollout]\nstrategy = \"canary\"\nsteps = [\"5%\", \"25%\", \"100%\"]\n"),
            None,
        )
        .unwrap();
        assert_eq!(
            canary.strategy,
            Strategy::Canary {
                steps: weights(&[5, 25, 100])
            }
        );
        assert_eq!(canary.bake, Duration::from_secs(300));

        let blue_green =
            RolloutPlan::from_config(&section("[rollout]\nstrategy = \"blue-green\"\n"), None)
                .unwrap();
        assert_eq!(blue_green.strategy, Strategy::BlueGreen);
        assert_eq!(blue_green.bake, Duration::from_secs(300));

        let replace = RolloutPlan::from_config(
            &section("[rollout]\nstrategy = \"replace\"\nbake = \"1m\"\n"),
            None,
        )
        .unwrap();
        assert_eq!(replace.strategy, Strategy::Replace);
        assert_eq!(replace.bake, Duration::from_secs(60));
    }

    #[test]
    fn the_override_wins_and_brings_its_own_bake() {
        let replace = section("");
        let plan = RolloutPlan::from_config(&replace, Some("canary")).unwrap();
        assert_eq!(plan.strategy, Strategy::default_canary());
        assert_eq!(plan.bake, Duration::from_secs(300));

        let canary = section("[rollout]\nstrategy = \"canary\"\n");
        let plan = RolloutPlan::from_config(&canary, Some("replace")).unwrap();
        assert_eq!(plan.strategy, Strategy::Replace);
        assert_eq!(plan.bake, Duration::ZERO);

        let plan = RolloutPlan::from_config(&canary, Some("blue-green")).unwrap();
        assert_eq!(plan.strategy, Strategy::BlueGreen);

        let error = RolloutPlan::from_config(&canary, Some("big-bang")).unwrap_err();
        assert_eq!(
            error,
            "--strategy: \"big-bang\" is not a strategy; use replace, blue-green or canary"
        );
    }

    #[test]
    fn every_field_and_guardrail_converts() {
        let plan = RolloutPlan::from_config(
            &section(
                "[rollout]\nstrategy = \"canary\"\nstep_duration = \"30s\"\n\
                 step_timeout = \"5m\"\nmin_requests = 20\nbake = \"90s\"\n\
                 [[rollout.guardrails]]\nmetric = \"error_rate\"\nmax = \"2.5%\"\nwindow = \"1m\"\n\
                 [[rollout.guardrails]]\nmetric = \"p99_latency\"\nmax = \"800ms\"\nwindow = \"3m\"\n\
                 [[rollout.guardrails]]\nmetric = \"error_rate_vs_stable\"\nmax = \"0.25%\"\n\
                 window = \"2m\"\n",
            ),
            None,
        )
        .unwrap();
        assert_eq!(plan.step_duration, Duration::from_secs(30));
        assert_eq!(plan.step_timeout, Duration::from_secs(300));
        assert_eq!(plan.min_requests, 20);
        assert_eq!(plan.bake, Duration::from_secs(90));
        let ratio = |ppm| Ratio::from_parts_per_million(ppm).unwrap();
        assert_eq!(
            plan.guardrails,
            vec![
                Guardrail {
                    metric: Metric::ErrorRate { max: ratio(25_000) },
                    window: Duration::from_secs(60),
                },
                Guardrail {
                    metric: Metric::P99Latency {
                        max: Duration::from_millis(800)
                    },
                    window: Duration::from_secs(180),
                },
                Guardrail {
                    metric: Metric::ErrorRateVsStable { max: ratio(2_500) },
                    window: Duration::from_secs(120),
                },
            ]
        );
    }

    #[test]
    fn sections_not_read_from_a_file_are_still_checked() {
        let mut config = section("");
        config.shadow = "2%".parse().unwrap();
        let plan = RolloutPlan::from_config(&config, None).unwrap();
        assert_eq!(
            plan.shadow,
            Some(ShadowPlan {
                share: Weight::from_percent(2).unwrap(),
                duration: Duration::from_secs(60),
            })
        );

        config.shadow = "0.005%".parse().unwrap();
        let error = RolloutPlan::from_config(&config, None).unwrap_err();
        assert_eq!(
            error,
            "[rollout] shadow: 0.005% is finer than traffic can be split (0.01%)"
        );

        let mut config = section("");
        config.steps = vec!["10%".parse().unwrap(), "50%".parse().unwrap()];
        let error = RolloutPlan::from_config(&config, Some("canary")).unwrap_err();
        assert!(
            error.starts_with("[rollout] steps: the last canary step is 50%"),
            "{error}"
        );

        let mut config = section("");
        config.min_requests = 0;
        let error = RolloutPlan::from_config(&config, None).unwrap_err();
        assert!(error.starts_with("[rollout] min_requests: "), "{error}");

        let mut config = section(
            "[[rollout.guardrails]]\nmetric = \"error_rate\"\nmax = \"1%\"\nwindow = \"1m\"\n",
        );
        config.guardrails[0].max = Some(GuardrailLimit::Number(0.01));
        let error = RolloutPlan::from_config(&config, None).unwrap_err();
        assert_eq!(
            error,
            "[[rollout.guardrails]] 1 (error_rate): max = 0.01 is not a percentage; \
             write e.g. max = \"1%\""
        );
    }

    #[test]
    fn external_guardrails_convert_for_when_the_daemon_reads_them() {
        let mut config = section("");
        config.guardrails = vec![GuardrailConfig {
            metric: GuardrailMetric::Http,
            max: None,
            min: Some(GuardrailLimit::Number(0.98)),
            window: baton_api::DurationText(Duration::from_secs(60)),
            server: None,
            query: None,
            url: Some("http://127.0.0.1:8081/stats".to_string()),
            json_path: Some("$.checkout_success_rate".to_string()),
        }];
        let plan = RolloutPlan::from_config(&config, None).unwrap();
        assert_eq!(
            plan.guardrails[0].metric,
            Metric::External {
                name: "$.checkout_success_rate from http://127.0.0.1:8081/stats".to_string(),
                min: Some(0.98),
                max: None,
            }
        );
        config.guardrails[0].min = None;
        let error = RolloutPlan::from_config(&config, None).unwrap_err();
        assert!(
            error.starts_with("[[rollout.guardrails]] 1 min/max: "),
            "{error}"
        );
    }
}
