//! Which engine events were already handled, so that replaying with `since` after a
//! reconnect counts nothing twice.
//!
//! The engine stamps an event before it takes the lock that orders its log, so timestamps
//! in the stream are not strictly increasing: "older than the newest seen" does not mean
//! "seen". Events are instead remembered by identity (time, type, action, actor) for a
//! window of time behind the newest, which is where a replay from the newest can reach.

use std::collections::{HashSet, VecDeque};

use super::events::Event;

/// How far behind the newest event identities are kept.
const WINDOW_NANOS: i64 = 120 * 1_000_000_000;

type EventKey = (i64, String, String, String);

#[derive(Debug, Default)]
pub struct SeenEvents {
    keys: HashSet<EventKey>,
    /// Keys in arrival order, for pruning.
    arrival: VecDeque<EventKey>,
    newest_nanos: Option<i64>,
}

impl SeenEvents {
    /// Records the event; false when it was seen before.
    pub fn first_time(&mut self, event: &Event) -> bool {
        let nanos = event.nanos();
        let key = (
            nanos,
            event.kind.clone(),
            event.action.clone(),
            event.actor.id.clone(),
        );
        if !self.keys.insert(key.clone()) {
            return false;
        }
        self.arrival.push_back(key);
        let newest = self.newest_nanos.map_or(nanos, |newest| newest.max(nanos));
        self.newest_nanos = Some(newest);
        while let Some(oldest) = self.arrival.front() {
            if oldest.0 >= newest.saturating_sub(WINDOW_NANOS) {
                break;
            }
            let oldest = self.arrival.pop_front().expect("front exists");
            self.keys.remove(&oldest);
        }
        true
    }

    /// Where a replay should start: the newest event handled.
    pub fn since(&self) -> Option<i64> {
        self.newest_nanos
    }

    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::events::Actor;

    fn event(nanos: i64, action: &str, id: &str) -> Event {
        Event {
            kind: "container".to_owned(),
            action: action.to_owned(),
            actor: Actor { id: id.to_owned() },
            time: nanos / 1_000_000_000,
            time_nano: nanos,
        }
    }

    #[test]
    fn a_replay_is_recognised_and_live_events_out_of_order_are_not() {
        let mut seen = SeenEvents::default();
        assert!(seen.first_time(&event(10, "create", "a")));
        assert!(seen.first_time(&event(20, "start", "a")));
        // Stamped earlier, arrived later: live, not a replay.
        assert!(seen.first_time(&event(15, "create", "b")));
        assert_eq!(seen.since(), Some(20));
        // The replay from since=20 (and a bit before).
        assert!(!seen.first_time(&event(15, "create", "b")));
        assert!(!seen.first_time(&event(20, "start", "a")));
        assert!(seen.first_time(&event(20, "start", "b")));
        assert!(seen.first_time(&event(30, "die", "a")));
    }

    #[test]
    fn memory_is_bounded_by_the_window() {
        let mut seen = SeenEvents::default();
        for second in 0..1000i64 {
            assert!(seen.first_time(&event(second * 1_000_000_000, "start", "a")));
        }
        assert!(seen.remembered() <= 122, "{}", seen.remembered());
    }
}
