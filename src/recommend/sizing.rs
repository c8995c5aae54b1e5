//! From a group's histories to its recommended limits, and the evidence for each: the
//! rules of `stevedore recommend` (headroom over what was used, floors, never lower after
//! an OOM kill or while throttled, room for tasks), following the Vertical Pod
//! Autoscaler's recommender where a Docker limit means what a Kubernetes request means.

use std::time::Duration;

use super::arithmetic::{
    self, CentiCpus, counter_increase, round_down_cpus, round_up_cpus,
    round_up_quarter_power_of_two,
};
use super::grouping::Group;
use super::history::{ContainerHistory, Current, Window};
use crate::policy::check::ENGINE_MIN_MEMORY;

const MIB: u64 = 1024 * 1024;

/// No memory limit below this: an idle container's working set is a few hundred KiB, and
/// a limit that tight leaves no room for a `docker exec` shell or a log rotation.
pub const MEMORY_FLOOR: u64 = 32 * MIB;
/// No CPU limit below a tenth of a CPU: an idle container must still start, answer its
/// health check and a `docker exec` without crawling.
pub const CPUS_FLOOR: CentiCpus = CentiCpus(10);
/// No task limit below this: shells, health checks and short-lived helpers come and go.
pub const PIDS_FLOOR: u64 = 64;
/// After an OOM kill, memory grows to at least 1.2 times the limit that killed, and by at
/// least 100 MiB: the VPA recommender's `--oom-bump-up-ratio` and `--oom-min-bump-up-bytes`.
pub const OOM_BUMP_RATIO: f64 = 1.2;
pub const OOM_MIN_BUMP: u64 = 100 * MIB;
/// A container throttled in at least this share of its CFS periods was held back by its
/// limit most of the time: what it used says more about the limit than about its need.
pub const THROTTLED_MOST: f64 = 0.5;

/// The knobs of the flags.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Added to the peak working set (0.15: 15 %).
    pub memory_headroom: f64,
    /// Added to the CPU percentile.
    pub cpu_headroom: f64,
    /// Which percentile of the CPU rate (0.95: the 95th).
    pub cpu_percentile: f64,
    /// Added to the peak task count.
    pub pids_headroom: f64,
    /// Less history than this gets no rule.
    pub min_history: Duration,
}

/// Why a recommended value is what it is, beyond "what was used, with headroom, rounded".
#[derive(Debug, Clone, PartialEq)]
pub enum Why {
    Usage,
    /// The floor is above what usage asked for.
    Floor,
    /// OOM-killed under `limit`: raised from it.
    RaisedAfterOomKills {
        kills: u64,
        limit: f64,
    },
    /// Throttled in most CFS periods under `limit` CPUs: raised from it.
    RaisedWhenThrottled {
        share: f64,
        limit: f64,
    },
    /// Usage asked for more than the host has.
    CappedAtHost {
        cpus: f64,
    },
}

/// One recommended limit, the limits its containers have now, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommended<T> {
    pub value: T,
    /// One per container of the group.
    pub current: Vec<Current>,
    pub why: Why,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MemoryEvidence {
    pub peak: f64,
    pub median: f64,
    pub oom_kills: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CpuEvidence {
    /// The rate at the chosen percentile, and the highest.
    pub at_percentile: f64,
    pub peak: f64,
    /// Throttled CFS periods over all periods, for containers with a CPU limit.
    pub throttled_share: Option<f64>,
}

/// What the group's history showed.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    /// Working-set samples scraped, over all containers.
    pub samples: u64,
    /// From the first point of any container to the last of any.
    pub history: Duration,
    pub memory: MemoryEvidence,
    pub cpu: Option<CpuEvidence>,
    pub peak_tasks: Option<f64>,
}

/// The limits of one rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Sizing {
    pub memory: Recommended<u64>,
    pub memory_reservation: Recommended<u64>,
    pub cpus: Option<Recommended<CentiCpus>>,
    pub pids: Option<Recommended<u64>>,
    pub evidence: Evidence,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Rule(Box<Sizing>),
    /// Less history than `--min-history`: no rule.
    TooLittleHistory {
        history: Duration,
        samples: u64,
    },
}

fn values(
    histories: &[ContainerHistory],
    points: fn(&ContainerHistory) -> &[super::api::Point],
) -> Vec<f64> {
    histories
        .iter()
        .flat_map(|history| points(history).iter().map(|point| point.value))
        .filter(|value| value.is_finite() && *value >= 0.0)
        .collect()
}

/// The earliest first point and the latest last point of the group's working sets.
fn history_span(members: &[ContainerHistory], step: Duration) -> Duration {
    let first = members
        .iter()
        .filter_map(|member| member.working_set.first())
        .map(|point| point.time)
        .min_by(f64::total_cmp);
    let last = members
        .iter()
        .filter_map(|member| member.working_set.last())
        .map(|point| point.time)
        .max_by(f64::total_cmp);
    match (first, last) {
        (Some(first), Some(last)) => arithmetic::span_between(first, last, step),
        _ => Duration::ZERO,
    }
}

/// The recommendation for one group.
pub fn size(group: &Group, window: &Window, settings: &Settings) -> Outcome {
    let members = &group.members;
    let samples = members.iter().map(|member| member.samples).sum();
    let history = history_span(members, window.step);
    let working_set = values(members, |member| &member.working_set);
    let (Some(peak_memory), Some(median_memory)) = (
        arithmetic::peak(&working_set),
        arithmetic::median(&working_set),
    ) else {
        return Outcome::TooLittleHistory { history, samples };
    };
    if history < settings.min_history {
        return Outcome::TooLittleHistory { history, samples };
    }
    let oom_kills_of = |member: &ContainerHistory| {
        let born = arithmetic::born_inside(&member.oom_kills, window.first_point(), window.step);
        counter_increase(&member.oom_kills, born).round() as u64
    };
    let oom_kills: u64 = members.iter().map(oom_kills_of).sum();

    let memory = memory(members, peak_memory, settings, &oom_kills_of);
    let reservation_bytes =
        round_up_quarter_power_of_two(median_memory.max(ENGINE_MIN_MEMORY as f64))
            .min(memory.value);
    let memory_reservation = Recommended {
        value: reservation_bytes,
        current: members
            .iter()
            .map(|member| member.limits.memory_reservation)
            .collect(),
        why: if median_memory < ENGINE_MIN_MEMORY as f64 {
            Why::Floor
        } else {
            Why::Usage
        },
    };

    let (cpus, cpu_evidence) = match cpus(members, window, settings) {
        Some((cpus, evidence)) => (Some(cpus), Some(evidence)),
        None => (None, None),
    };

    let tasks = values(members, |member| &member.tasks);
    let peak_tasks = arithmetic::peak(&tasks);
    let pids = peak_tasks.map(|peak| {
        let wanted = peak * (1.0 + settings.pids_headroom);
        let (value, why) = if wanted <= PIDS_FLOOR as f64 {
            (PIDS_FLOOR, Why::Floor)
        } else {
            (round_up_quarter_power_of_two(wanted), Why::Usage)
        };
        Recommended {
            value,
            current: members.iter().map(|member| member.limits.pids).collect(),
            why,
        }
    });

    Outcome::Rule(Box::new(Sizing {
        memory,
        memory_reservation,
        cpus,
        pids,
        evidence: Evidence {
            samples,
            history,
            memory: MemoryEvidence {
                peak: peak_memory,
                median: median_memory,
                oom_kills,
            },
            cpu: cpu_evidence,
            peak_tasks,
        },
    }))
}

/// Memory: the peak working set plus headroom, at least the floor; after OOM kills under
/// a limit, raised from that limit as the VPA recommender raises it (never lowered).
fn memory(
    members: &[ContainerHistory],
    peak: f64,
    settings: &Settings,
    oom_kills_of: &dyn Fn(&ContainerHistory) -> u64,
) -> Recommended<u64> {
    let mut wanted = peak * (1.0 + settings.memory_headroom);
    let mut why = Why::Usage;
    if wanted < MEMORY_FLOOR as f64 {
        wanted = MEMORY_FLOOR as f64;
        why = Why::Floor;
    }
    for member in members {
        let kills = oom_kills_of(member);
        if kills == 0 {
            continue;
        }
        // Without a limit of its own, the kill was the host running out: there is no limit
        // to raise.
        let Current::Set(limit) = member.limits.memory else {
            continue;
        };
        let bumped = (limit * OOM_BUMP_RATIO).max(limit + OOM_MIN_BUMP as f64);
        if bumped > wanted {
            wanted = bumped;
            why = Why::RaisedAfterOomKills { kills, limit };
        }
    }
    Recommended {
        value: round_up_quarter_power_of_two(wanted),
        current: members.iter().map(|member| member.limits.memory).collect(),
        why,
    }
}

/// CPUs: the chosen percentile of the CPU rate plus headroom, at least the floor; a
/// container throttled most of the time is raised from its limit (never lowered); never
/// above the host's CPUs.
fn cpus(
    members: &[ContainerHistory],
    window: &Window,
    settings: &Settings,
) -> Option<(Recommended<CentiCpus>, CpuEvidence)> {
    let rates = values(members, |member| &member.cpu_rate);
    let at_percentile = arithmetic::percentile(&rates, settings.cpu_percentile)?;
    let peak = arithmetic::peak(&rates)?;
    let wanted = at_percentile * (1.0 + settings.cpu_headroom);
    let (mut value, mut why) = if round_up_cpus(wanted) <= CPUS_FLOOR {
        (CPUS_FLOOR, Why::Floor)
    } else {
        (round_up_cpus(wanted), Why::Usage)
    };

    let (mut periods, mut throttled) = (0.0, 0.0);
    for member in members {
        let increase = |points: &[super::api::Point]| {
            counter_increase(
                points,
                arithmetic::born_inside(points, window.first_point(), window.step),
            )
        };
        let member_periods = increase(&member.cfs_periods);
        let member_throttled = increase(&member.cfs_throttled_periods);
        periods += member_periods;
        throttled += member_throttled;
        if member_periods <= 0.0 {
            continue;
        }
        let share = member_throttled / member_periods;
        if share < THROTTLED_MOST {
            continue;
        }
        // What it used was capped by its limit; its need is at least the limit, so the
        // limit takes the place of its usage.
        if let Current::Set(limit) = member.limits.cpus {
            let raised = round_up_cpus(limit * (1.0 + settings.cpu_headroom));
            if raised > value {
                value = raised;
                why = Why::RaisedWhenThrottled { share, limit };
            }
        }
    }
    let host_cpus = members
        .iter()
        .filter_map(|member| member.host_cpus)
        .min_by(f64::total_cmp);
    if let Some(host) = host_cpus
        && value > round_down_cpus(host)
    {
        value = round_down_cpus(host);
        why = Why::CappedAtHost { cpus: host };
    }
    let evidence = CpuEvidence {
        at_percentile,
        peak,
        throttled_share: (periods > 0.0).then(|| throttled / periods),
    };
    let recommended = Recommended {
        value,
        current: members.iter().map(|member| member.limits.cpus).collect(),
        why,
    };
    Some((recommended, evidence))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recommend::api::Point;
    use crate::recommend::grouping::{Group, GroupKey};
    use crate::recommend::history::CurrentLimits;

    const MIB_F: f64 = MIB as f64;

    fn settings() -> Settings {
        Settings {
            memory_headroom: 0.15,
            cpu_headroom: 0.15,
            cpu_percentile: 0.95,
            pids_headroom: 1.0,
            min_history: Duration::from_secs(60),
        }
    }

    /// A window of 100 points a second apart, ending at 100.
    fn window() -> Window {
        Window {
            length: Duration::from_secs(100),
            step: Duration::from_secs(1),
            end: 100.0,
        }
    }

    /// A point per second from `start`.
    fn series(start: f64, values: impl IntoIterator<Item = f64>) -> Vec<Point> {
        values
            .into_iter()
            .enumerate()
            .map(|(index, value)| Point {
                time: start + index as f64,
                value,
            })
            .collect()
    }

    fn container(name: &str, working_set: f64, cpu: f64) -> ContainerHistory {
        ContainerHistory {
            working_set: series(1.0, (0..100).map(|_| working_set)),
            cpu_rate: series(1.0, (0..100).map(|_| cpu)),
            tasks: series(1.0, (0..100).map(|_| 3.0)),
            oom_kills: series(1.0, (0..100).map(|_| 0.0)),
            samples: 100,
            limits: CurrentLimits {
                memory: Current::Set(256.0 * MIB_F),
                memory_reservation: Current::Unlimited,
                cpus: Current::Unlimited,
                pids: Current::Unlimited,
            },
            host_cpus: Some(8.0),
            ..ContainerHistory::without_history(name, "app:1")
        }
    }

    fn group(members: Vec<ContainerHistory>) -> Group {
        Group {
            key: GroupKey::Image("app:1".to_owned()),
            name: "app:1".to_owned(),
            members,
            exclude_compose: false,
        }
    }

    fn sized(members: Vec<ContainerHistory>) -> Sizing {
        match size(&group(members), &window(), &settings()) {
            Outcome::Rule(sizing) => *sizing,
            other => panic!("no rule: {other:?}"),
        }
    }

    #[test]
    fn memory_is_the_peak_with_headroom_rounded_up_and_reservation_the_median() {
        let mut steady = container("steady", 40.0 * MIB_F, 0.2);
        // One spike to 100 MiB among 40s: the limit follows the peak, the reservation the
        // typical.
        steady.working_set[50].value = 100.0 * MIB_F;
        let sizing = sized(vec![steady]);
        // 100 MiB + 15 % = 115 MiB, up to 1.25 x 2^6 MiB... = 128 MiB.
        assert_eq!(sizing.memory.value, 128 * MIB);
        assert_eq!(sizing.memory.why, Why::Usage);
        assert_eq!(sizing.memory.current, vec![Current::Set(256.0 * MIB_F)]);
        assert_eq!(sizing.memory_reservation.value, 40 * MIB);
        assert_eq!(sizing.evidence.memory.peak, 100.0 * MIB_F);
        assert_eq!(sizing.evidence.memory.median, 40.0 * MIB_F);
        assert_eq!(sizing.evidence.samples, 100);
        assert_eq!(sizing.evidence.history, Duration::from_secs(100));
    }

    #[test]
    fn cpus_are_a_high_percentile_with_headroom() {
        let mut busy = container("busy", 40.0 * MIB_F, 0.2);
        // Five short bursts in 100 points stay above the 95th percentile; six do not.
        for index in [10, 30, 50, 70, 80] {
            busy.cpu_rate[index].value = 1.0;
        }
        let sizing = sized(vec![busy.clone()]);
        let cpus = sizing.cpus.unwrap();
        // 0.2 + 15 % = 0.23, rounded up to 0.25.
        assert_eq!(cpus.value, CentiCpus(25));
        assert_eq!(sizing.evidence.cpu.as_ref().unwrap().at_percentile, 0.2);
        assert_eq!(sizing.evidence.cpu.as_ref().unwrap().peak, 1.0);
        busy.cpu_rate[90].value = 1.0;
        // 1 + 15 %, up to 1.25.
        assert_eq!(sized(vec![busy]).cpus.unwrap().value, CentiCpus(125));
    }

    #[test]
    fn floors_keep_idle_containers_usable() {
        let idle = container("idle", 300.0 * 1024.0, 0.0001);
        let sizing = sized(vec![idle]);
        assert_eq!(sizing.memory.value, MEMORY_FLOOR);
        assert_eq!(sizing.memory.why, Why::Floor);
        assert_eq!(
            sizing.memory_reservation.value,
            6 * MIB,
            "the engine's minimum"
        );
        assert_eq!(sizing.cpus.as_ref().unwrap().value, CPUS_FLOOR);
        assert_eq!(sizing.cpus.unwrap().why, Why::Floor);
        let pids = sizing.pids.unwrap();
        assert_eq!(pids.value, PIDS_FLOOR);
        assert_eq!(pids.why, Why::Floor);
    }

    #[test]
    fn pids_get_room_above_their_peak() {
        let mut forking = container("forking", 40.0 * MIB_F, 0.2);
        forking.tasks[20].value = 70.0;
        // 70 tasks doubled: 140, up to 160.
        assert_eq!(sized(vec![forking]).pids.unwrap().value, 160);
    }

    #[test]
    fn an_oom_killed_container_is_raised_from_its_limit_never_lowered() {
        let mut killed = container("killed", 31.0 * MIB_F, 0.01);
        killed.limits.memory = Current::Set(32.0 * MIB_F);
        killed.oom_kills = series(1.0, (0..100).map(|second| f64::from(second / 30)));
        let sizing = sized(vec![killed.clone()]);
        // 32 MiB + 100 MiB (more than x1.2) = 132 MiB, up to 160 MiB.
        assert_eq!(sizing.memory.value, 160 * MIB);
        assert_eq!(
            sizing.memory.why,
            Why::RaisedAfterOomKills {
                kills: 3,
                limit: 32.0 * MIB_F
            }
        );
        assert_eq!(sizing.evidence.memory.oom_kills, 3);

        // A big limit is raised by 20 %.
        killed.limits.memory = Current::Set(1024.0 * MIB_F);
        killed.working_set = series(1.0, (0..100).map(|_| 1000.0 * MIB_F));
        assert_eq!(sized(vec![killed.clone()]).memory.value, 1280 * MIB);

        // Killed before its first point in the window, with the counter already at 1 there:
        // a container started inside the window counts that kill; one seen from the
        // window's start does not (it happened before).
        killed.limits.memory = Current::Set(32.0 * MIB_F);
        killed.working_set = series(1.0, (0..100).map(|_| 20.0 * MIB_F));
        killed.oom_kills = series(1.0, (0..100).map(|_| 1.0));
        assert_eq!(sized(vec![killed.clone()]).evidence.memory.oom_kills, 0);
        assert_eq!(sized(vec![killed.clone()]).memory.value, MEMORY_FLOOR);
        killed.oom_kills = series(40.0, (0..61).map(|_| 1.0));
        let sizing = sized(vec![killed]);
        assert_eq!(sizing.evidence.memory.oom_kills, 1);
        assert_eq!(sizing.memory.value, 160 * MIB);
    }

    #[test]
    fn a_container_throttled_most_of_the_time_is_raised_from_its_limit() {
        let mut throttled = container("throttled", 40.0 * MIB_F, 0.5);
        throttled.limits.cpus = Current::Set(0.5);
        // 10 periods a second, 8 of them throttled.
        throttled.cfs_periods = series(1.0, (0..100).map(|second| f64::from(second * 10)));
        throttled.cfs_throttled_periods = series(1.0, (0..100).map(|second| f64::from(second * 8)));
        // Capped at its limit, its 95th percentile is the limit itself; and even if it
        // were less, the limit (plus headroom) stands.
        throttled.cpu_rate = series(1.0, (0..100).map(|_| 0.3));
        let sizing = sized(vec![throttled.clone()]);
        let cpus = sizing.cpus.unwrap();
        assert_eq!(cpus.value, CentiCpus(60), "0.5 + 15 % = 0.575, up to 0.6");
        assert!(matches!(cpus.why, Why::RaisedWhenThrottled { limit, .. } if limit == 0.5));
        let share = sizing.evidence.cpu.unwrap().throttled_share.unwrap();
        assert!((share - 0.8).abs() < 1e-9, "{share}");

        // Throttled in a few periods only: lowered to what it uses.
        throttled.cfs_throttled_periods = series(1.0, (0..100).map(f64::from));
        assert_eq!(sized(vec![throttled]).cpus.unwrap().value, CentiCpus(35));
    }

    #[test]
    fn cpus_never_exceed_the_host() {
        let mut greedy = container("greedy", 40.0 * MIB_F, 1.9);
        greedy.host_cpus = Some(2.0);
        let cpus = sized(vec![greedy]).cpus.unwrap();
        assert_eq!(cpus.value, CentiCpus(200));
        assert_eq!(cpus.why, Why::CappedAtHost { cpus: 2.0 });
    }

    #[test]
    fn replicas_pool_their_samples() {
        let small = container("web-1", 40.0 * MIB_F, 0.1);
        let big = container("web-2", 80.0 * MIB_F, 0.4);
        let sizing = sized(vec![small, big]);
        assert_eq!(sizing.memory.value, 96 * MIB, "80 MiB + 15 %, up to 96 MiB");
        assert_eq!(sizing.memory.current.len(), 2);
        assert_eq!(
            sizing.cpus.unwrap().value,
            CentiCpus(50),
            "0.4 + 15 %, up to 0.5"
        );
        assert_eq!(sizing.evidence.samples, 200);
    }

    #[test]
    fn too_little_history_gets_no_rule() {
        let mut young = container("young", 40.0 * MIB_F, 0.2);
        young.working_set = series(70.0, (0..30).map(|_| 40.0 * MIB_F));
        young.samples = 30;
        assert_eq!(
            size(&group(vec![young.clone()]), &window(), &settings()),
            Outcome::TooLittleHistory {
                history: Duration::from_secs(30),
                samples: 30
            }
        );
        // With an older replica, the group has history enough.
        let old = container("old", 40.0 * MIB_F, 0.2);
        assert!(matches!(
            size(&group(vec![young.clone(), old]), &window(), &settings()),
            Outcome::Rule(_)
        ));
        young.working_set.clear();
        assert!(matches!(
            size(&group(vec![young]), &window(), &settings()),
            Outcome::TooLittleHistory {
                history: Duration::ZERO,
                ..
            }
        ));
    }
}
