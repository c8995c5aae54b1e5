//! The policy task: reloads the file (on SIGHUP, and when its contents change) and, in
//! enforce mode, applies the policy to a container when it starts, to every running
//! container after each inventory resync (exporter start, engine reconnect), and after
//! each successful reload.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::Signal;
use tokio::sync::mpsc;

use super::apply::{self, ApplyError, Outcome};
use super::check::Host;
use super::drift::{self, Observed};
use super::model::ContainerFacts;
use super::state::{self, APPLIED, FAILED, PolicyMode, PolicyState};
use crate::cgroup::Cgroup;
use crate::docker::sync::Notice;
use crate::docker::{EngineClient, Inventory};
use crate::target::Resolver;

/// How often the file is compared with what was last read. Polling, rather than a watch,
/// survives editors that replace the file and config maps that swap a symlink.
const FILE_POLL: Duration = Duration::from_secs(1);

pub struct Enforcer {
    pub state: Arc<PolicyState>,
    /// Where the host's block devices are listed (`<procfs>/partitions`), for device limits.
    pub procfs: PathBuf,
    pub inventory: Arc<Inventory>,
    /// Where each container's cgroup is.
    pub targets: Arc<Resolver>,
    pub engine: EngineClient,
    /// SIGHUP reloads the policy.
    pub hangups: Signal,
}

impl Enforcer {
    pub async fn run(mut self, mut notices: mpsc::Receiver<Notice>) {
        let mut poll = tokio::time::interval(FILE_POLL);
        let mut last_text = self.read_text().await;
        loop {
            tokio::select! {
                notice = notices.recv() => match notice {
                    None => return,
                    Some(Notice::Started(id)) => self.apply_to(&id).await,
                    Some(Notice::Resynced) => self.apply_to_all().await,
                },
                Some(()) = self.hangups.recv() => {
                    last_text = self.read_text().await;
                    if self.reload("SIGHUP").await {
                        self.apply_to_all().await;
                    }
                }
                _ = poll.tick() => {
                    let text = self.read_text().await;
                    if text != last_text {
                        last_text = text;
                        if self.reload("the file changed").await {
                            self.apply_to_all().await;
                        }
                    }
                }
            }
        }
    }

    /// The policy file's text (off the runtime's threads), `None` when it cannot be read.
    async fn read_text(&self) -> Option<String> {
        let file = self.state.file.clone();
        tokio::task::spawn_blocking(move || state::read_file(&file).ok())
            .await
            .ok()
            .flatten()
    }

    /// Loads the file again; an invalid file leaves the active policy as it was.
    async fn reload(&self, why: &str) -> bool {
        let (file, procfs) = (self.state.file.clone(), self.procfs.clone());
        let loaded =
            tokio::task::spawn_blocking(move || state::load(&file, &Host::local(&procfs))).await;
        let Ok(loaded) = loaded else {
            tracing::error!(reason = why, "policy not reloaded: the reading task failed");
            return false;
        };
        match loaded {
            Ok(policy) => {
                tracing::info!(file = %self.state.file.display(), rules = policy.rules.len(), reason = why, "policy loaded");
                self.state.replace(policy);
                true
            }
            Err(error) => {
                self.state.reload_failed();
                for line in error.lines(&self.state.file) {
                    tracing::error!(problem = %line, reason = why, "policy not reloaded; the last good policy stays in force");
                }
                false
            }
        }
    }

    async fn apply_to_all(&self) {
        let running: Vec<String> = self
            .inventory
            .snapshot()
            .containers
            .iter()
            .filter(|tracked| tracked.container.is_running())
            .map(|tracked| tracked.container.id.clone())
            .collect();
        if self.state.mode != PolicyMode::Enforce {
            tracing::debug!(
                containers = running.len(),
                "report mode: drift reported, nothing applied"
            );
            return;
        }
        for id in running {
            self.apply_to(&id).await;
        }
    }

    async fn apply_to(&self, id: &str) {
        if self.state.mode != PolicyMode::Enforce {
            return;
        }
        // Finding a new container's cgroup reads its `/proc/<pid>/cgroup`: the runtime moves
        // its other tasks off this thread meanwhile.
        let found = tokio::task::block_in_place(|| {
            self.targets
                .containers(&self.inventory.snapshot())
                .into_iter()
                .find(|target| {
                    target
                        .container()
                        .is_some_and(|container| container.id == id)
                })
        });
        let Some(target) = found else {
            return;
        };
        let Some(container) = target.container() else {
            return;
        };
        let policy = self.state.policy();
        // A container no rule selects is never touched.
        let Some(wanted) = policy.wanted_for(&ContainerFacts::from(container)) else {
            tracing::debug!(container = %container.name, "no rule selects the container; left alone");
            return;
        };
        let Some(cgroup_path) = &target.cgroup else {
            return;
        };
        let cgroup = Cgroup::new(&self.targets.config().hierarchy, cgroup_path);
        let observed = match tokio::task::block_in_place(|| drift::observe(&cgroup, &wanted)) {
            Ok(observed) => observed,
            Err(error) => {
                tracing::error!(container = %container.name, %error, "cannot read the container's current limits; nothing applied");
                return;
            }
        };
        let outcome = apply::apply(&self.engine, id, &cgroup, &container.resources, observed).await;
        let (items, error) = match &outcome {
            Outcome::Unchanged => {
                tracing::debug!(container = %container.name, "limits already as the policy wants");
                return;
            }
            Outcome::Applied { changed } => (changed, None),
            Outcome::Failed { attempted, error } => (attempted, Some(error)),
        };
        let rules = policy.rule_names(items.iter().map(|item| &item.wanted));
        let (rule_list, changes) = (rules.join(","), describe_changes(items));
        match error {
            None => {
                for rule in &rules {
                    self.state.count(rule, APPLIED);
                }
                tracing::info!(container = %container.name, id = %container.id, rules = %rule_list, %changes, "policy applied")
            }
            // Not the policy's failure: every running container is gone through again
            // when the exporter reconnects to the engine.
            Some(error @ ApplyError::EngineUnreachable(_)) => tracing::warn!(
                container = %container.name,
                id = %container.id,
                rules = %rule_list,
                wanted = %changes,
                %error,
                "policy not applied: the engine was not reached; applied again at reconnect, reload or start"
            ),
            Some(error) => {
                for rule in &rules {
                    self.state.count(rule, FAILED);
                }
                tracing::error!(
                    container = %container.name,
                    id = %container.id,
                    rules = %rule_list,
                    wanted = %changes,
                    %error,
                    "policy not applied; the container is left as it was"
                )
            }
        }
    }
}

/// `memory 64MiB -> 512MiB (loosens), cpus unlimited -> 1.5`.
pub fn describe_changes(observed: &[Observed]) -> String {
    observed
        .iter()
        .map(|item| {
            let current = item
                .current
                .as_ref()
                .map_or_else(|| "unknown".to_owned(), ToString::to_string);
            let loosens = if item.loosens() { " (loosens)" } else { "" };
            format!(
                "{} {current} -> {}{loosens}",
                item.wanted.resource, item.wanted.value
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
