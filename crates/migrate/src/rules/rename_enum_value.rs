//! `rename-enum-value`: the running version still writes the old label.

use pg_query::NodeEnum;

use crate::context::Context;
use crate::rule::{Concern, Hit, Rule};
use crate::statement::{Statement, string_value};

pub(crate) const RULE: Rule = Rule {
    name: "rename-enum-value",
    concern: Concern::OldVersion,
    summary: "the running version still reads and writes the old label",
    help: "Add the new label (ALTER TYPE … ADD VALUE), deploy code that writes it and accepts both, backfill rows from the old label, and stop using the old one (PostgreSQL cannot drop an enum label).",
    check,
};

fn check(statement: &Statement<'_>, _: &Context<'_>) -> Vec<Hit> {
    match statement.node() {
        NodeEnum::AlterEnumStmt(alter) if !alter.old_val.is_empty() => {
            let type_name: Vec<&str> = alter.type_name.iter().filter_map(string_value).collect();
            vec![Hit::new(format!(
                "renaming label '{}' of enum `{}` to '{}' breaks the version still running: its writes of '{}' fail and its reads no longer match",
                alter.old_val,
                type_name.join("."),
                alter.new_val,
                alter.old_val
            ))]
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::firing::fires;

    #[test]
    fn flags_renaming_an_enum_label() {
        assert!(fires(
            "rename-enum-value",
            "ALTER TYPE mood RENAME VALUE 'sad' TO 'blue';"
        ));
    }

    #[test]
    fn passes_adding_a_label_and_in_a_contract_migration() {
        assert!(!fires(
            "rename-enum-value",
            "ALTER TYPE mood ADD VALUE 'blue';"
        ));
        assert!(!fires(
            "rename-enum-value",
            "-- baton:phase contract\nALTER TYPE mood RENAME VALUE 'sad' TO 'blue';"
        ));
    }
}
