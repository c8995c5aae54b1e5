//! The live container inventory: what the engine last told us about each container, the
//! engine itself, and whether it is reachable. Written by the engine sync task, read by
//! every scrape.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use super::container::Container;

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

/// A container as last described by the engine. A new description is a new `Arc`, which
/// is how targets know to resolve it again.
#[derive(Debug, Clone)]
pub struct Tracked {
    pub container: Arc<Container>,
    /// OOM kills in the container's runs before the current one, from the engine's `oom`
    /// events (filled in by `Inventory::snapshot`).
    pub earlier_oom_kills: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Changes whenever a container is added, changed or removed.
    pub generation: u64,
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
    generation: u64,
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
            generation: state.generation,
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
        state.generation += 1;
        state
            .containers
            .insert(tracked.container.id.clone(), tracked);
    }

    pub fn remove(&self, id: &str) -> Option<Tracked> {
        let mut state = self.state.write().expect("inventory lock");
        state.generation += 1;
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
        state.generation += 1;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_upserts_removes_and_counts() {
        let inventory = Inventory::default();
        let tracked = |id: &str| Tracked {
            container: Arc::new(Container::running(id)),
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
        let mut restarted = Container::running("c");
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
