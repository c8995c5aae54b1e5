//! What `policy check` costs as a policy grows: time per rule at 1,000 to 25,000 rules
//! (the largest file a policy may be is about 25,000 such rules), and that time as a ratio
//! of the smallest size's, measured in the same run. A ratio near 1 is linear growth.
//! Run with `cargo bench --bench policy_check`.

use std::path::Path;
use std::time::{Duration, Instant};

use stevedore::policy::check::Host;
use stevedore::policy::state::{self, MAX_POLICY_BYTES};

const SIZES: [usize; 4] = [1_000, 4_000, 16_000, 25_000];

/// A policy of `rules` distinct rules, each with a selector and three limits.
fn policy_text(rules: usize) -> String {
    let mut text = String::from("rules:\n");
    for index in 0..rules {
        text.push_str(&format!(
            "  - name: rule-{index}\n    match:\n      name: \"app-{index}-*\"\n      labels: [\"tier=front\"]\n    limits:\n      memory: 512m\n      cpus: 1.5\n      pids-limit: 100\n"
        ));
    }
    text
}

/// The fastest of three loads: the least disturbed by the rest of the machine.
fn load_time(text: &str, host: &Host) -> Duration {
    (0..3)
        .map(|_| {
            let started = Instant::now();
            let policy = state::load_text(text, host).expect("a valid policy");
            let elapsed = started.elapsed();
            assert!(!policy.rules.is_empty());
            elapsed
        })
        .min()
        .expect("three loads")
}

fn main() {
    let host = Host::local(Path::new("/proc"));
    println!(
        "{:>8} {:>10} {:>10} {:>14} {:>10}",
        "rules", "bytes", "check", "per rule", "vs first"
    );
    let mut first_per_rule = None;
    for rules in SIZES {
        let text = policy_text(rules);
        assert!(
            text.len() as u64 <= MAX_POLICY_BYTES,
            "{rules} rules are over the limit"
        );
        let elapsed = load_time(&text, &host);
        let per_rule = elapsed.as_secs_f64() / rules as f64;
        let first = *first_per_rule.get_or_insert(per_rule);
        println!(
            "{rules:>8} {:>10} {:>8.1}ms {:>12.2}µs {:>9.2}x",
            text.len(),
            elapsed.as_secs_f64() * 1e3,
            per_rule * 1e6,
            per_rule / first
        );
    }
}
