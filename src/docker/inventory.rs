//! The live container inventory: what the engine last told us about each container, the
//! engine itself, and whether it is reachable. Written by the engine sync task, read by
//! every scrape.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use super::container::Container;
use crate::metrics::TargetLabels;

/// Facts about the engine from `/info` and `/version`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Engine {
    pub version: String,
    pub api_version: String,
    pub os: String,
    pub kernel: String,
    pub cgroup_driver: String,
    pub cgroup_version: String,
    pub storage_driver: String,
}

/// A container and where its cgroup is.
#[derive(Debug, Clone)]
pub struct Tracked {
    pub container: Arc<Container>,
    /// The cgroup path while the container runs (`None` when stopped or not found).
    pub cgroup_path: Option<String>,
    /// The labels of its samples: `id`, `name`, `image`, `container_label_*`.
    pub labels: TargetLabels,
}

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub up: bool,
    pub engine: Option<Engine>,
    pub containers: Vec<Tracked>,
    /// `(type, action)` → events counted since the exporter started.
    pub events: BTreeMap<(String, String), u64>,
}

#[derive(Debug, Default)]
pub struct Inventory {
    // A std lock: it is never held across an `.await`, and scrapes read it from blocking
    // threads.
    state: RwLock<State>,
}

#[derive(Debug, Default)]
struct State {
    up: bool,
    engine: Option<Engine>,
    containers: BTreeMap<String, Tracked>,
    events: BTreeMap<(String, String), u64>,
}

impl Inventory {
    pub fn snapshot(&self) -> Snapshot {
        let state = self.state.read().expect("inventory lock");
        Snapshot {
            up: state.up,
            engine: state.engine.clone(),
            containers: state.containers.values().cloned().collect(),
            events: state.events.clone(),
        }
    }

    pub fn set_up(&self, up: bool) {
        self.state.write().expect("inventory lock").up = up;
    }

    pub fn set_engine(&self, engine: Engine) {
        self.state.write().expect("inventory lock").engine = Some(engine);
    }

    pub fn upsert(&self, tracked: Tracked) {
        let mut state = self.state.write().expect("inventory lock");
        state
            .containers
            .insert(tracked.container.id.clone(), tracked);
    }

    pub fn remove(&self, id: &str) -> Option<Tracked> {
        self.state
            .write()
            .expect("inventory lock")
            .containers
            .remove(id)
    }

    /// Replaces the whole inventory after a full list (a resync).
    pub fn replace_all(&self, containers: Vec<Tracked>) {
        let mut state = self.state.write().expect("inventory lock");
        state.containers = containers
            .into_iter()
            .map(|tracked| (tracked.container.id.clone(), tracked))
            .collect();
    }

    pub fn get(&self, id: &str) -> Option<Tracked> {
        self.state
            .read()
            .expect("inventory lock")
            .containers
            .get(id)
            .cloned()
    }

    pub fn count_event(&self, kind: &str, action: &str) {
        let mut state = self.state.write().expect("inventory lock");
        *state
            .events
            .entry((kind.to_owned(), action.to_owned()))
            .or_insert(0) += 1;
    }
}

/// Prometheus label names allow `[a-zA-Z0-9_]`; Docker label keys allow dots and dashes.
pub fn sanitize_label_name(key: &str) -> String {
    key.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The labels of a container's samples: `id` (its cgroup path, as cAdvisor has it),
/// `name`, `image`, and `container_label_<key>` for each allow-listed Docker label.
pub fn target_labels(
    container: &Container,
    cgroup_path: &str,
    label_allowlist: &[String],
) -> TargetLabels {
    let mut labels = vec![
        ("id".to_owned(), cgroup_path.to_owned()),
        ("name".to_owned(), container.name.clone()),
        ("image".to_owned(), container.image.clone()),
    ];
    for key in label_allowlist {
        if let Some(value) = container.labels.get(key) {
            labels.push((
                format!("container_label_{}", sanitize_label_name(key)),
                value.clone(),
            ));
        }
    }
    Arc::new(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(id: &str) -> Container {
        Container {
            id: id.to_owned(),
            name: "web".to_owned(),
            image: "busybox".to_owned(),
            image_id: String::new(),
            labels: [
                ("com.docker.compose.project".to_owned(), "shop".to_owned()),
                ("secret".to_owned(), "x".to_owned()),
            ]
            .into_iter()
            .collect(),
            state: "running".to_owned(),
            pid: Some(1),
            cgroup_parent: String::new(),
            created_seconds: None,
            started_at_seconds: None,
            finished_at_seconds: None,
            exit_code: 0,
            restart_count: 0,
            oom_killed: false,
            health: None,
            resources: Default::default(),
        }
    }

    #[test]
    fn labels_copy_only_allow_listed_docker_labels() {
        let labels = target_labels(
            &container("abc"),
            "/docker/abc",
            &["com.docker.compose.project".to_owned()],
        );
        assert_eq!(
            labels.as_slice(),
            &[
                ("id".to_owned(), "/docker/abc".to_owned()),
                ("name".to_owned(), "web".to_owned()),
                ("image".to_owned(), "busybox".to_owned()),
                (
                    "container_label_com_docker_compose_project".to_owned(),
                    "shop".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn inventory_upserts_removes_and_counts() {
        let inventory = Inventory::default();
        let tracked = |id: &str| Tracked {
            container: Arc::new(container(id)),
            cgroup_path: None,
            labels: Arc::new(Vec::new()),
        };
        inventory.upsert(tracked("a"));
        inventory.upsert(tracked("b"));
        assert_eq!(inventory.snapshot().containers.len(), 2);
        assert!(inventory.remove("a").is_some());
        inventory.replace_all(vec![tracked("c")]);
        let snapshot = inventory.snapshot();
        assert_eq!(snapshot.containers.len(), 1);
        assert_eq!(snapshot.containers[0].container.id, "c");
        inventory.count_event("container", "start");
        inventory.count_event("container", "start");
        assert_eq!(
            inventory.snapshot().events[&("container".to_owned(), "start".to_owned())],
            2
        );
    }
}
