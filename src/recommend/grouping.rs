//! Which containers share a rule: a compose service's replicas, or the containers of one
//! image (as the VPA recommender pools the pods of one controller), or each container by
//! name; and the selector each rule gets.

use std::collections::BTreeMap;

use super::history::{ComposeService, ContainerHistory};

/// How containers are grouped into rules (`--group-by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GroupBy {
    /// A compose service's replicas share a rule; other containers share one per image.
    Service,
    /// One rule per container name.
    Container,
}

/// What a rule selects.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum GroupKey {
    /// Every container of one image (not part of a compose service).
    Image(String),
    /// Every replica of a compose service.
    Compose(ComposeService),
    /// The container of this name.
    Container(String),
}

/// Containers that get one rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub key: GroupKey,
    /// The rule's name: `project/service`, the image, or the container's name; unique.
    pub name: String,
    pub members: Vec<ContainerHistory>,
    /// An image rule leaves compose containers to their service's rule: set when compose
    /// labels are exported at all (`--docker.label-allowlist` may drop them, and then no
    /// container is known to be part of a service).
    pub exclude_compose: bool,
}

impl Group {
    /// Distinct container names, sorted.
    pub fn container_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .members
            .iter()
            .map(|member| member.name.clone())
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// Groups the histories. Image rules come first and compose rules after them, so that
/// were a compose container selected by both, its service's rule (the later one) would
/// win; the `exclude` of image rules keeps that from happening at all.
pub fn group(histories: Vec<ContainerHistory>, by: GroupBy) -> Vec<Group> {
    let compose_labels_exported = histories.iter().any(|history| history.compose.is_some());
    let mut groups: BTreeMap<GroupKey, Vec<ContainerHistory>> = BTreeMap::new();
    for history in histories {
        let key = match (by, &history.compose) {
            (GroupBy::Container, _) => GroupKey::Container(history.name.clone()),
            (GroupBy::Service, Some(service)) => GroupKey::Compose(service.clone()),
            (GroupBy::Service, None) => GroupKey::Image(history.image.clone()),
        };
        groups.entry(key).or_default().push(history);
    }
    let mut used: Vec<String> = Vec::new();
    groups
        .into_iter()
        .map(|(key, members)| {
            let wanted = match &key {
                GroupKey::Image(image) => image.clone(),
                GroupKey::Compose(service) => format!("{}/{}", service.project, service.service),
                GroupKey::Container(name) => name.clone(),
            };
            let name = unique_name(&wanted, &used);
            used.push(name.clone());
            Group {
                exclude_compose: matches!(key, GroupKey::Image(_)) && compose_labels_exported,
                key,
                name,
                members,
            }
        })
        .collect()
}

/// `name`, or `name-2`, `name-3`... when taken (an image and a service could be named
/// alike); rule names must differ, since metrics tell rules apart by name.
fn unique_name(name: &str, used: &[String]) -> String {
    if !used.iter().any(|taken| taken == name) {
        return name.to_owned();
    }
    (2..)
        .map(|n| format!("{name}-{n}"))
        .find(|candidate| !used.contains(candidate))
        .expect("some suffix is free")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(name: &str, image: &str, compose: Option<(&str, &str)>) -> ContainerHistory {
        ContainerHistory {
            compose: compose.map(|(project, service)| ComposeService {
                project: project.to_owned(),
                service: service.to_owned(),
            }),
            ..ContainerHistory::without_history(name, image)
        }
    }

    fn names(groups: &[Group]) -> Vec<(&str, Vec<String>, bool)> {
        groups
            .iter()
            .map(|group| {
                (
                    group.name.as_str(),
                    group.container_names(),
                    group.exclude_compose,
                )
            })
            .collect()
    }

    #[test]
    fn replicas_of_a_service_and_containers_of_an_image_share_a_rule() {
        let histories = vec![
            container("shop-web-1", "nginx:1.27", Some(("shop", "web"))),
            container("shop-web-2", "nginx:1.27", Some(("shop", "web"))),
            container("shop-db-1", "postgres:16", Some(("shop", "db"))),
            container("worker-a", "jobs:3", None),
            container("worker-b", "jobs:3", None),
            container("proxy", "nginx:1.27", None),
        ];
        let groups = group(histories, GroupBy::Service);
        assert_eq!(
            names(&groups),
            [
                (
                    "jobs:3",
                    vec!["worker-a".to_owned(), "worker-b".to_owned()],
                    true
                ),
                ("nginx:1.27", vec!["proxy".to_owned()], true),
                ("shop/db", vec!["shop-db-1".to_owned()], false),
                (
                    "shop/web",
                    vec!["shop-web-1".to_owned(), "shop-web-2".to_owned()],
                    false
                ),
            ]
        );
    }

    #[test]
    fn without_compose_labels_image_rules_exclude_nothing() {
        let groups = group(
            vec![container("a", "app:1", None), container("b", "app:1", None)],
            GroupBy::Service,
        );
        assert_eq!(
            names(&groups),
            [("app:1", vec!["a".to_owned(), "b".to_owned()], false)]
        );
    }

    #[test]
    fn by_container_each_name_gets_a_rule_and_names_stay_unique() {
        let mut other_host = container("web", "nginx", None);
        other_host.key.instance = "other:9417".to_owned();
        let groups = group(
            vec![
                container("web", "nginx", None),
                other_host,
                container("db", "pg", None),
            ],
            GroupBy::Container,
        );
        assert_eq!(groups.len(), 2, "one name on two hosts is one rule");
        assert_eq!(groups[1].members.len(), 2);
        assert_eq!(unique_name("a", &["a".to_owned(), "a-2".to_owned()]), "a-3");
        let clash = group(
            vec![
                container("x", "shop/web", None),
                container("y", "img", Some(("shop", "web"))),
            ],
            GroupBy::Service,
        );
        assert_eq!(clash[0].name, "shop/web");
        assert_eq!(clash[1].name, "shop/web-2");
    }
}
