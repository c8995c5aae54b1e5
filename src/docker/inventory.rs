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
    /// OOM kills in the container's runs before the current one, from the engine's `oom`
    /// events (filled in by `Inventory::snapshot`).
    pub earlier_oom_kills: u64,
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
    /// When each container had an `oom` event (nanoseconds), while the container exists.
    ooms: BTreeMap<String, Vec<i64>>,
}

impl Inventory {
    pub fn snapshot(&self) -> Snapshot {
        let state = self.state.read().expect("inventory lock");
        Snapshot {
            up: state.up,
            engine: state.engine.clone(),
            containers: state
                .containers
                .values()
                .map(|tracked| Tracked {
                    earlier_oom_kills: earlier_oom_kills(
                        state.ooms.get(&tracked.container.id),
                        tracked.container.started_at_seconds,
                    ),
                    ..tracked.clone()
                })
                .collect(),
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
        let mut state = self.state.write().expect("inventory lock");
        state.ooms.remove(id);
        state.containers.remove(id)
    }

    /// Remembers that the container had an OOM kill at this time.
    pub fn record_oom(&self, id: &str, nanos: i64) {
        let mut state = self.state.write().expect("inventory lock");
        state.ooms.entry(id.to_owned()).or_default().push(nanos);
    }

    /// Replaces the whole inventory after a full list (a resync).
    pub fn replace_all(&self, containers: Vec<Tracked>) {
        let mut state = self.state.write().expect("inventory lock");
        state.containers = containers
            .into_iter()
            .map(|tracked| (tracked.container.id.clone(), tracked))
            .collect();
        let State {
            containers, ooms, ..
        } = &mut *state;
        ooms.retain(|id, _| containers.contains_key(id));
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

/// OOM kills before the container's current run started: its cgroup, and the kernel's
/// count with it, is new at every start, while the engine's `oom` events carry on.
fn earlier_oom_kills(ooms: Option<&Vec<i64>>, started_at_seconds: Option<f64>) -> u64 {
    let (Some(ooms), Some(started)) = (ooms, started_at_seconds) else {
        return 0;
    };
    let started_nanos = (started * 1e9) as i64;
    ooms.iter().filter(|nanos| **nanos < started_nanos).count() as u64
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
            earlier_oom_kills: 0,
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
        // An OOM kill before the current run counts; one during it is the kernel's to count.
        let mut restarted = container("c");
        restarted.started_at_seconds = Some(100.0);
        inventory.upsert(Tracked {
            container: Arc::new(restarted),
            ..tracked("c")
        });
        inventory.record_oom("c", 50_000_000_000);
        inventory.record_oom("c", 150_000_000_000);
        assert_eq!(inventory.snapshot().containers[0].earlier_oom_kills, 1);
        inventory.remove("c");
        inventory.upsert(tracked("c"));
        assert_eq!(inventory.snapshot().containers[0].earlier_oom_kills, 0);
        assert_eq!(
            inventory.snapshot().events[&("container".to_owned(), "start".to_owned())],
            2
        );
    }
}
