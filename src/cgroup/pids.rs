//! Number of tasks in a cgroup and its task limit (`pids.current`, `pids.max`; the same
//! files in v1 and v2).

use super::parse::{self, Limit};
use super::{Cgroup, Controller, FileError};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pids {
    pub current: Option<u64>,
    pub limit: Option<Limit>,
}

pub fn read(cgroup: &Cgroup) -> Result<Pids, FileError> {
    Ok(Pids {
        current: cgroup.read(Controller::Pids, "pids.current", parse::single_u64)?,
        limit: cgroup.read(Controller::Pids, "pids.max", parse::limit)?,
    })
}
