//! Unleash's official client specification (`@unleash/client-specification`,
//! pinned in `scripts/unleash-spec`): every case of every file its
//! `index.json` lists, both `isEnabled` (`tests`) and variant
//! (`variantTests`) cases, must give the specified answer.
//!
//! The specification is found through `BATON_UNLEASH_SPEC` (its
//! `specifications` directory); when that is unset the test runs
//! `scripts/unleash-spec`, which installs the pinned version with npm into a
//! cache outside the repo.
//!
//! Each case runs twice, with the random source drawing the lowest and then
//! the highest bucket: the specification's answers never depend on chance,
//! so both runs must give them.

use std::path::{Path, PathBuf};
use std::process::Command;

use baton_flags::{Context, Features, Variant};
use serde::Deserialize;

#[derive(Deserialize)]
struct SpecFile {
    name: String,
    state: serde_json::Value,
    #[serde(default)]
    tests: Vec<Case<bool>>,
    #[serde(default, rename = "variantTests")]
    variant_tests: Vec<Case<Variant>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Case<T> {
    description: String,
    context: Context,
    toggle_name: String,
    expected_result: T,
}

fn spec_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BATON_UNLEASH_SPEC") {
        return PathBuf::from(dir);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/unleash-spec");
    let output = Command::new("bash")
        .arg(&script)
        .output()
        .unwrap_or_else(|error| panic!("could not run {}: {error}", script.display()));
    assert!(
        output.status.success(),
        "{} failed ({}): {}\nset BATON_UNLEASH_SPEC to a specifications directory instead",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

fn read<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("could not read {}: {error}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("could not parse {}: {error}", path.display()))
}

#[test]
fn every_unleash_specification_case_passes() {
    let dir = spec_dir();
    let files: Vec<String> = read(&dir.join("index.json"));
    assert!(!files.is_empty(), "{} lists no files", dir.display());

    let (mut enabled_cases, mut variant_cases, mut warnings) = (0, 0, 0);
    let mut failures = String::new();
    for file in &files {
        let spec: SpecFile = read(&dir.join(file));
        let features = Features::from_unleash_json(&spec.state.to_string())
            .unwrap_or_else(|error| panic!("{file}: state does not load: {error}"));
        // Some cases are broken on purpose (an unknown operator, a missing
        // segment): they load with warnings and must still answer right.
        warnings += features.warnings().len();
        let draws = [
            features.clone().with_random(|_| 1),
            features.with_random(|buckets| buckets),
        ];
        enabled_cases += spec.tests.len();
        variant_cases += spec.variant_tests.len();
        let place = format!("{file} ({})", spec.name);
        check(
            &place,
            "isEnabled",
            &spec.tests,
            &draws,
            &mut failures,
            |features, case| features.is_enabled(&case.toggle_name, &case.context),
        );
        check(
            &place,
            "variant",
            &spec.variant_tests,
            &draws,
            &mut failures,
            |features, case| features.variant(&case.toggle_name, &case.context),
        );
    }

    let failed = failures.lines().count();
    println!(
        "Unleash client specification at {}: {} files, {enabled_cases} isEnabled and \
         {variant_cases} variant cases ({warnings} warnings on load): {} passed, {failed} failed",
        dir.display(),
        files.len(),
        enabled_cases + variant_cases - failed
    );
    assert!(enabled_cases > 0 && variant_cases > 0, "no cases found");
    assert!(failures.is_empty(), "{failed} failures:\n{failures}");
}

/// Runs `cases` with each of `draws`, writing one line to `failures` for each
/// case that any of them answers wrong.
fn check<T: PartialEq + std::fmt::Debug>(
    place: &str,
    question: &str,
    cases: &[Case<T>],
    draws: &[Features],
    failures: &mut String,
    answer: impl Fn(&Features, &Case<T>) -> T,
) {
    for case in cases {
        if let Some(actual) = draws
            .iter()
            .map(|features| answer(features, case))
            .find(|actual| *actual != case.expected_result)
        {
            failures.push_str(&format!(
                "{place}: {}: {question}({}) is {actual:?}, expected {:?}\n",
                case.description, case.toggle_name, case.expected_result
            ));
        }
    }
}
