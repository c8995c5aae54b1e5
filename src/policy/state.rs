//! The active policy and what the exporter reports about it: whether the last reload
//! worked, when the policy last loaded, and how applications went.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::ValueEnum;

use super::check::{self, Host};
use super::document::{self, Problem};
use super::model::{Policy, Resource};
use super::units::format_bytes;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyMode {
    /// Apply the policy's limits to the containers it selects.
    Enforce,
    /// Change nothing; report where containers differ from the policy.
    Report,
}

/// Policy files larger than this are refused. It holds some 25,000 rules, more than any
/// host needs, and reading a policy costs about forty times its size in memory.
pub const MAX_POLICY_BYTES: u64 = 4 * 1024 * 1024;

/// Why a policy file could not be used.
#[derive(Debug)]
pub enum LoadError {
    Read(std::io::Error),
    TooLarge { bytes: u64 },
    Problems(Vec<Problem>),
}

impl LoadError {
    /// One line per problem, `FILE:LINE:COLUMN: message`, as compilers write them.
    pub fn lines(&self, path: &Path) -> Vec<String> {
        match self {
            LoadError::Read(error) => {
                vec![format!(
                    "{}: cannot read the policy: {error}",
                    path.display()
                )]
            }
            LoadError::TooLarge { bytes } => vec![format!(
                "{}: the policy is {}, more than the {} a policy file may be; split it or write fewer, broader rules",
                path.display(),
                format_bytes(*bytes),
                format_bytes(MAX_POLICY_BYTES)
            )],
            LoadError::Problems(problems) => problems
                .iter()
                .map(|problem| {
                    format!(
                        "{}:{}:{}: {}",
                        path.display(),
                        problem.position.line,
                        problem.position.column,
                        problem.message
                    )
                })
                .collect(),
        }
    }
}

/// The text of a policy file, refused unread when it is larger than `MAX_POLICY_BYTES`.
pub fn read_file(path: &Path) -> Result<String, LoadError> {
    let file = std::fs::File::open(path).map_err(LoadError::Read)?;
    let bytes = file.metadata().map_err(LoadError::Read)?.len();
    if bytes > MAX_POLICY_BYTES {
        return Err(LoadError::TooLarge { bytes });
    }
    // The file may grow between the size check and the read: read no further than allowed.
    let mut text = String::new();
    file.take(MAX_POLICY_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(LoadError::Read)?;
    match u64::try_from(text.len()) {
        Ok(bytes) if bytes <= MAX_POLICY_BYTES => Ok(text),
        _ => Err(LoadError::TooLarge {
            bytes: text.len() as u64,
        }),
    }
}

/// Reads, parses and checks a policy file.
pub fn load(path: &Path, host: &Host) -> Result<Policy, LoadError> {
    load_text(&read_file(path)?, host)
}

/// Parses and checks a policy, reporting every problem at once, and finds the devices it
/// names.
pub fn load_text(text: &str, host: &Host) -> Result<Policy, LoadError> {
    let (mut policy, mut problems) = document::parse_partial(text);
    problems.extend(check::check(&policy, host));
    if !problems.is_empty() {
        problems.sort();
        problems.dedup();
        return Err(LoadError::Problems(problems));
    }
    for setting in policy.rules.iter().flat_map(|rule| &rule.limits) {
        if let Resource::Device(_, path) = &setting.value.resource {
            let number = host.device(path).map_err(|reason| {
                LoadError::Problems(vec![Problem::at(setting.position, reason)])
            })?;
            policy.devices.insert(path.clone(), number);
        }
    }
    Ok(policy)
}

pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64())
}

/// Shared between the enforcer (which writes) and scrapes (which read). Std locks: none is
/// held across an `.await`.
#[derive(Debug)]
pub struct PolicyState {
    pub file: PathBuf,
    pub mode: PolicyMode,
    active: RwLock<Arc<Policy>>,
    reload: Mutex<ReloadStatus>,
    /// (rule, result) → applications counted.
    applied: Mutex<BTreeMap<(String, &'static str), u64>>,
}

#[derive(Debug, Clone, Copy)]
pub struct ReloadStatus {
    pub success: bool,
    /// When a policy last loaded successfully, in seconds since the epoch.
    pub last_success_seconds: f64,
}

pub const APPLIED: &str = "applied";
pub const FAILED: &str = "failed";

impl PolicyState {
    pub fn new(file: PathBuf, mode: PolicyMode, policy: Policy) -> PolicyState {
        PolicyState {
            file,
            mode,
            active: RwLock::new(Arc::new(policy)),
            reload: Mutex::new(ReloadStatus {
                success: true,
                last_success_seconds: unix_now(),
            }),
            applied: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn policy(&self) -> Arc<Policy> {
        Arc::clone(&self.active.read().expect("policy lock"))
    }

    pub fn replace(&self, policy: Policy) {
        *self.active.write().expect("policy lock") = Arc::new(policy);
        *self.reload.lock().expect("reload lock") = ReloadStatus {
            success: true,
            last_success_seconds: unix_now(),
        };
    }

    pub fn reload_failed(&self) {
        self.reload.lock().expect("reload lock").success = false;
    }

    pub fn reload_status(&self) -> ReloadStatus {
        *self.reload.lock().expect("reload lock")
    }

    pub fn count(&self, rule: &str, result: &'static str) {
        *self
            .applied
            .lock()
            .expect("applied lock")
            .entry((rule.to_owned(), result))
            .or_insert(0) += 1;
    }

    pub fn applied(&self) -> BTreeMap<(String, &'static str), u64> {
        self.applied.lock().expect("applied lock").clone()
    }
}
