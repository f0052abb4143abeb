//! AWS policy-evaluation rules, one rstest case per rule (see `conformance/mod.rs`).

mod conformance;

use std::collections::HashSet;

use conformance::rule_cases;

#[test]
fn table_covers_at_least_sixty_distinct_rules() {
    let cases = rule_cases();
    let names: HashSet<&str> = cases.iter().map(|c| c.name).collect();
    assert_eq!(names.len(), cases.len(), "rule names must be unique");
    assert!(cases.len() >= 60, "only {} rules", cases.len());
}

#[test]
fn every_case_builds_and_exports() {
    for case in rule_cases() {
        if let Err(e) = case.to_crosscheck_json() {
            panic!("rule {} does not export: {e}", case.name);
        }
    }
}
