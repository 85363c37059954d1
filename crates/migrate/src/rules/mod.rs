//! The lint rules, one per file. Each is a [`Rule`]: a stable name, what it
//! protects, the safe way, and a pure check over one parsed statement and
//! what the file did before it.

use crate::rule::Rule;

mod add_check_not_valid_missing;
mod add_column_volatile_default;
mod add_exclusion_constraint;
mod add_foreign_key_not_valid_missing;
mod add_primary_key;
mod add_required_column;
mod add_unique_constraint;
mod added_constraint;
mod change_column_type;
mod cluster;
mod column_type;
mod concurrently_in_transaction;
mod create_index_not_concurrently;
mod drop_column;
mod drop_index_not_concurrently;
mod drop_table;
#[cfg(test)]
pub(crate) mod firing;
mod missing_lock_timeout;
mod prefer_bigint;
mod prefer_identity;
mod prefer_jsonb;
mod prefer_text;
mod prefer_timestamptz;
mod reindex_not_concurrently;
mod rename_column;
mod rename_enum_value;
mod rename_table;
mod set_not_null;
mod truncate;
mod vacuum_full;
mod validate_in_same_transaction;

/// Every rule, in the order findings on one statement are reported:
/// those that break the old version, then locks and rewrites, then hygiene.
pub const ALL: &[Rule] = &[
    drop_column::RULE,
    drop_table::RULE,
    rename_column::RULE,
    rename_table::RULE,
    add_required_column::RULE,
    set_not_null::RULE,
    change_column_type::RULE,
    truncate::RULE,
    rename_enum_value::RULE,
    add_column_volatile_default::RULE,
    create_index_not_concurrently::RULE,
    drop_index_not_concurrently::RULE,
    reindex_not_concurrently::RULE,
    add_foreign_key_not_valid_missing::RULE,
    add_check_not_valid_missing::RULE,
    validate_in_same_transaction::RULE,
    add_unique_constraint::RULE,
    add_primary_key::RULE,
    add_exclusion_constraint::RULE,
    vacuum_full::RULE,
    cluster::RULE,
    concurrently_in_transaction::RULE,
    missing_lock_timeout::RULE,
    prefer_bigint::RULE,
    prefer_timestamptz::RULE,
    prefer_text::RULE,
    prefer_jsonb::RULE,
    prefer_identity::RULE,
];

/// The rule called `name`.
pub fn by_name(name: &str) -> Option<&'static Rule> {
    ALL.iter().find(|rule| rule.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_kebab_case_and_match_their_files() {
        for (index, rule) in ALL.iter().enumerate() {
            assert!(
                rule.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '-'),
                "{}",
                rule.name
            );
            assert_eq!(by_name(rule.name).map(|r| r.name), Some(rule.name));
            assert!(ALL[index + 1..].iter().all(|other| other.name != rule.name));
            let file = format!(
                "{}/src/rules/{}.rs",
                env!("CARGO_MANIFEST_DIR"),
                rule.name.replace('-', "_")
            );
            assert!(std::path::Path::new(&file).exists(), "{file}");
            assert!(!rule.summary.is_empty() && !rule.help.is_empty());
        }
    }

    #[test]
    fn every_rule_is_in_the_readme_with_its_level() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
                .expect("the workspace README is readable");
        for rule in ALL {
            let row = format!("| `{}` | {}", rule.name, rule.level().as_str());
            assert!(
                readme.contains(&row),
                "README lacks the row for {}",
                rule.name
            );
        }
    }
}
