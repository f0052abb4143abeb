//! Grouping scenarios that can share one deploy.

use crate::model::{DeployOverrides, Scenario};

/// Groups scenarios by equal (canonical) deploy overrides, so each group needs one deploy.
///
/// Groups come in the order of their first scenario, and scenarios keep their order inside
/// a group; [`DeployOverrides::key`] names a group's stacks.
pub fn deploy_groups(scenarios: &[Scenario]) -> Vec<(DeployOverrides, Vec<&Scenario>)> {
    let mut groups: Vec<(DeployOverrides, Vec<&Scenario>)> = Vec::new();
    for scenario in scenarios {
        match groups
            .iter_mut()
            .find(|(overrides, _)| *overrides == scenario.deploy)
        {
            Some((_, members)) => members.push(scenario),
            None => groups.push((scenario.deploy.clone(), vec![scenario])),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::{Stack, parse_str};

    fn scenario(name: &str, deploy: &str) -> Scenario {
        let text = format!(
            "name: {name}\n{deploy}invoke: {{ payload: {{}} }}\nexpect: {{ status: success }}\n"
        );
        parse_str(Path::new("scenarios/x.yaml"), &text).expect("test scenario parses")
    }

    #[test]
    fn equal_overrides_share_a_group_whatever_their_spelling() {
        let scenarios = [
            scenario("plain", ""),
            scenario(
                "secret a",
                "deploy:\n  calleecloudformation: { ExternalId: s3cr3t, A: 1 }\n  callercloudformation: { ExternalId: s3cr3t }\n",
            ),
            scenario("empty stack map", "deploy:\n  s3callee: {}\n"),
            scenario(
                "secret b",
                "deploy:\n  callercloudformation: { ExternalId: s3cr3t }\n  calleecloudformation: { A: \"1\", ExternalId: s3cr3t }\n",
            ),
            scenario(
                "other secret",
                "deploy:\n  calleecloudformation: { ExternalId: other }\n",
            ),
        ];

        let groups = deploy_groups(&scenarios);

        let names: Vec<Vec<&str>> = groups
            .iter()
            .map(|(_, members)| members.iter().map(|s| s.name.as_str()).collect())
            .collect();
        assert_eq!(
            names,
            [
                vec!["plain", "empty stack map"],
                vec!["secret a", "secret b"],
                vec!["other secret"]
            ]
        );
        assert!(groups[0].0.is_empty());
        let by_name = groups[1].0.to_stack_map();
        assert_eq!(
            by_name.keys().collect::<Vec<_>>(),
            ["calleecloudformation", "callercloudformation"]
        );
        assert_eq!(by_name["calleecloudformation"]["A"], "1");
        assert_eq!(
            groups[1]
                .0
                .parameters(Stack::CalleeCloudformation)
                .and_then(|p| p.get("ExternalId"))
                .map(String::as_str),
            Some("s3cr3t")
        );
    }

    #[test]
    fn group_keys_are_short_lowercase_hex_distinct_and_stable() {
        let secret = scenario(
            "s",
            "deploy:\n  calleecloudformation: { ExternalId: s3cr3t }\n",
        )
        .deploy;
        let other = scenario(
            "o",
            "deploy:\n  calleecloudformation: { ExternalId: other }\n",
        )
        .deploy;
        let same_elsewhere = scenario(
            "e",
            "deploy:\n  callercloudformation: { ExternalId: s3cr3t }\n",
        )
        .deploy;

        let keys = [
            DeployOverrides::default().key(),
            secret.key(),
            other.key(),
            same_elsewhere.key(),
        ];

        for key in &keys {
            assert_eq!(key.len(), 8, "{key}");
            assert!(
                key.chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
                "{key}"
            );
        }
        let distinct: std::collections::BTreeSet<_> = keys.iter().collect();
        assert_eq!(distinct.len(), keys.len(), "{keys:?}");
        assert_eq!(secret.key(), secret.clone().key());
    }
}
