//! Where a Docker container's cgroup is: from the engine's cgroup driver and the
//! container's `--cgroup-parent`, or from `/proc/<pid>/cgroup` of its main process.

use super::parse::ParseError;

/// The engine's cgroup driver (`CgroupDriver` in `/info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    Cgroupfs,
    Systemd,
}

impl Driver {
    pub fn from_engine(name: &str) -> Driver {
        if name.eq_ignore_ascii_case("systemd") {
            Driver::Systemd
        } else {
            Driver::Cgroupfs
        }
    }
}

/// The cgroup path Docker gives a container, as runc builds it:
/// - cgroupfs: `<parent>/<id>`, parent `/docker` by default;
/// - systemd: the parent slice expanded into its ancestors, then `docker-<id>.scope`,
///   parent `system.slice` by default (`my-app.slice` → `/my.slice/my-app.slice`).
pub fn container_cgroup_path(driver: Driver, cgroup_parent: &str, id: &str) -> String {
    match driver {
        Driver::Cgroupfs => {
            let parent = cgroup_parent.trim_end_matches('/');
            let parent = if parent.is_empty() { "/docker" } else { parent };
            let separator = if parent.starts_with('/') { "" } else { "/" };
            format!("{separator}{parent}/{id}")
        }
        Driver::Systemd => {
            let slice = if cgroup_parent.is_empty() {
                "system.slice"
            } else {
                cgroup_parent
            };
            format!("{}/docker-{id}.scope", systemd_slice_path(slice))
        }
    }
}

/// Expands a systemd slice name into its cgroup path: each `-` separates a parent slice
/// (`a-b-c.slice` → `/a.slice/a-b.slice/a-b-c.slice`); `-.slice` is the root.
pub fn systemd_slice_path(slice: &str) -> String {
    let Some(name) = slice.strip_suffix(".slice") else {
        // Not a slice name: runc would refuse it; treat it as a plain path.
        return format!("/{}", slice.trim_matches('/'));
    };
    if name.is_empty() || name == "-" {
        return String::new();
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in name.split('-').filter(|part| !part.is_empty()) {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        path.push('/');
        path.push_str(&prefix);
        path.push_str(".slice");
    }
    path
}

/// One line of `/proc/<pid>/cgroup`: `hierarchy-id:controller-list:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcCgroup {
    pub controllers: Vec<String>,
    pub path: String,
}

pub fn parse_proc_cgroup(text: &str) -> Result<Vec<ProcCgroup>, ParseError> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let mut fields = line.splitn(3, ':');
            let (Some(_id), Some(controllers), Some(path)) =
                (fields.next(), fields.next(), fields.next())
            else {
                return Err(ParseError(format!(
                    "line {line:?} is not \"id:controllers:path\""
                )));
            };
            Ok(ProcCgroup {
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect(),
                path: path.to_owned(),
            })
        })
        .collect()
}

/// The cgroup path of a process from its `/proc/<pid>/cgroup` lines: the v2 entry
/// (`0::/path`) on a unified host, otherwise the memory controller's.
pub fn process_cgroup_path(lines: &[ProcCgroup], unified: bool) -> Option<String> {
    let wanted = |line: &&ProcCgroup| {
        if unified {
            line.controllers.is_empty()
        } else {
            line.controllers.iter().any(|c| c == "memory")
        }
    };
    lines.iter().find(wanted).map(|line| line.path.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ID: &str = "1388890c0e174c990c794b8ccec96336412285eba6ef52ae4e353ec7b715ac77";

    #[test]
    fn cgroupfs_driver_paths() {
        assert_eq!(
            container_cgroup_path(Driver::Cgroupfs, "", ID),
            format!("/docker/{ID}")
        );
        assert_eq!(
            container_cgroup_path(Driver::Cgroupfs, "/batch/", ID),
            format!("/batch/{ID}")
        );
        assert_eq!(
            container_cgroup_path(Driver::Cgroupfs, "batch", ID),
            format!("/batch/{ID}")
        );
    }

    #[test]
    fn systemd_driver_paths() {
        assert_eq!(
            container_cgroup_path(Driver::Systemd, "", ID),
            format!("/system.slice/docker-{ID}.scope")
        );
        assert_eq!(
            container_cgroup_path(Driver::Systemd, "my-app.slice", ID),
            format!("/my.slice/my-app.slice/docker-{ID}.scope")
        );
        assert_eq!(systemd_slice_path("-.slice"), "");
        assert_eq!(
            systemd_slice_path("a-b-c.slice"),
            "/a.slice/a-b.slice/a-b-c.slice"
        );
        assert_eq!(Driver::from_engine("systemd"), Driver::Systemd);
        assert_eq!(Driver::from_engine("cgroupfs"), Driver::Cgroupfs);
    }

    #[test]
    fn proc_cgroup_of_hybrid_and_unified_hosts() {
        let hybrid = parse_proc_cgroup(&format!(
            "9:name=systemd:/docker/{ID}\n4:memory:/docker/{ID}\n2:cpu,cpuacct:/docker/{ID}\n0::/docker/{ID}\n"
        ))
        .unwrap();
        assert_eq!(hybrid[2].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(
            process_cgroup_path(&hybrid, false),
            Some(format!("/docker/{ID}"))
        );
        let unified = parse_proc_cgroup("0::/system.slice/docker-x.scope\n").unwrap();
        assert_eq!(
            process_cgroup_path(&unified, true),
            Some("/system.slice/docker-x.scope".to_owned())
        );
        assert_eq!(process_cgroup_path(&unified, false), None);
        assert!(parse_proc_cgroup("garbage\n").is_err());
    }

    fn any_parent() -> impl Strategy<Value = String> {
        "\\PC{0,20}"
    }

    proptest! {
        #[test]
        fn never_panics_and_paths_end_in_the_container(text in "\\PC*", parent in any_parent()) {
            if let Ok(lines) = parse_proc_cgroup(&text) {
                prop_assert!(lines.len() <= text.lines().count());
            }
            let systemd = container_cgroup_path(Driver::Systemd, &parent, ID);
            prop_assert!(systemd.ends_with(&format!("/docker-{ID}.scope")), "{}", systemd);
            let cgroupfs = container_cgroup_path(Driver::Cgroupfs, &parent, ID);
            prop_assert!(cgroupfs.starts_with('/') && cgroupfs.ends_with(&format!("/{ID}")), "{}", cgroupfs);
        }
    }
}
