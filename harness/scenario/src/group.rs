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

/// One of `count` shards, `index` counted from 1 (`--shard 2/3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which shard, from 1.
    pub index: usize,
    /// How many shards.
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{text}` is not K/N with 1 <= K <= N, e.g. 2/3");
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            k.trim().parse::<usize>().map_err(|_| bad())?,
            n.trim().parse::<usize>().map_err(|_| bad())?,
        );
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

/// The scenarios of one shard, in their original order.
///
/// Deterministic for the same files: a variant's scenarios stay together (so
/// each variant is deployed on one shard only), the default deployment's
/// scenarios are spread one by one, and units go, largest first and then by
/// name, to the shard with the fewest scenarios so far. The shards together
/// hold every scenario exactly once.
pub fn shard(scenarios: Vec<Scenario>, shard: Shard) -> Vec<Scenario> {
    let mut units: Vec<Vec<String>> = Vec::new();
    for (overrides, members) in deploy_groups(&scenarios) {
        let names = members.iter().map(|s| s.name.clone());
        if overrides.is_empty() {
            units.extend(names.map(|name| vec![name]));
        } else {
            units.push(names.collect());
        }
    }
    units.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    let mut load = vec![0usize; shard.count];
    let mut mine = std::collections::HashSet::new();
    for unit in units {
        let (least, _) = load
            .iter()
            .enumerate()
            .min_by_key(|(i, l)| (**l, *i))
            .unwrap_or((0, &0));
        load[least] += unit.len();
        if least + 1 == shard.index {
            mine.extend(unit);
        }
    }
    scenarios
        .into_iter()
        .filter(|s| mine.contains(&s.name))
        .collect()
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
    fn shards_cover_every_scenario_once_and_keep_variants_whole() {
        let variant = "deploy:\n  calleecloudformation: { ExternalId: x }\n";
        let other = "deploy:\n  calleecloudformation: { ExternalId: y }\n";
        let scenarios: Vec<Scenario> = (0..7)
            .map(|i| scenario(&format!("plain {i}"), ""))
            .chain((0..3).map(|i| scenario(&format!("x {i}"), variant)))
            .chain((0..2).map(|i| scenario(&format!("y {i}"), other)))
            .collect();
        let mut seen = Vec::new();
        for index in 1..=3 {
            let mine = shard(scenarios.clone(), Shard { index, count: 3 });
            let names: Vec<String> = mine.iter().map(|s| s.name.clone()).collect();
            for prefix in ["x ", "y "] {
                let count = names.iter().filter(|n| n.starts_with(prefix)).count();
                assert!(
                    count == 0 || count == if prefix == "x " { 3 } else { 2 },
                    "{names:?}"
                );
            }
            assert!((3..=5).contains(&names.len()), "shard {index}: {names:?}");
            // The same input gives the same shard.
            let again: Vec<String> = shard(scenarios.clone(), Shard { index, count: 3 })
                .iter()
                .map(|s| s.name.clone())
                .collect();
            assert_eq!(names, again);
            seen.extend(names);
        }
        seen.sort();
        let mut all: Vec<String> = scenarios.iter().map(|s| s.name.clone()).collect();
        all.sort();
        assert_eq!(seen, all);
    }

    #[test]
    fn shard_specs_parse_or_say_what_is_expected() {
        assert_eq!("2/3".parse(), Ok(Shard { index: 2, count: 3 }));
        for bad in ["0/3", "4/3", "3", "a/b", "1/0"] {
            let err = bad.parse::<Shard>().expect_err(bad);
            assert!(err.contains("K/N"), "{err}");
        }
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
