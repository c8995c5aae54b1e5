//! The engine's event stream (`GET /events`), read line by line into lenient event
//! records.
//!
//! Newer engines add event types and actions, so nothing here is an enum: every line that is
//! JSON becomes an `Event` with its type and action as plain strings, and a line that is not
//! is reported and skipped rather than ending the stream.

use http_body_util::BodyExt;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::client::{EngineClient, EngineError};

/// One engine event, as much of it as the exporter uses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Event {
    #[serde(rename = "Type", default)]
    pub kind: String,
    #[serde(rename = "Action", default)]
    pub action: String,
    #[serde(rename = "Actor", default)]
    pub actor: Actor,
    #[serde(rename = "time", default)]
    pub time: i64,
    #[serde(rename = "timeNano", default)]
    pub time_nano: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Actor {
    #[serde(rename = "ID", default)]
    pub id: String,
}

impl Event {
    /// The action without its arguments: `exec_start: sh -c ...` → `exec_start`,
    /// `health_status: healthy` → `health_status`.
    pub fn base_action(&self) -> &str {
        normalize_action(&self.action)
    }

    /// Nanoseconds since the epoch; older engines send only `time` (seconds).
    pub fn nanos(&self) -> i64 {
        if self.time_nano > 0 {
            self.time_nano
        } else {
            self.time.saturating_mul(1_000_000_000)
        }
    }
}

pub fn normalize_action(action: &str) -> &str {
    action.split(':').next().unwrap_or(action).trim()
}

/// The `since` query value for a time in nanoseconds: `seconds.nanoseconds`.
pub fn since_parameter(nanos: i64) -> String {
    format!(
        "{}.{:09}",
        nanos.div_euclid(1_000_000_000),
        nanos.rem_euclid(1_000_000_000)
    )
}

/// What the stream yields: an event, or a line that could not be decoded.
#[derive(Debug)]
pub enum StreamItem {
    Event(Event),
    Undecodable {
        line: String,
        error: String,
    },
    /// The stream ended; the reason, for the log.
    Ended(String),
}

/// Opens the event stream, replaying from `since_nanos` when given. Items arrive on the
/// returned channel until the connection ends, which is always announced by `Ended`.
pub async fn follow(
    client: &EngineClient,
    since_nanos: Option<i64>,
) -> Result<mpsc::Receiver<StreamItem>, EngineError> {
    let mut path = "/events".to_owned();
    if let Some(nanos) = since_nanos {
        path.push_str(&format!("?since={}", since_parameter(nanos)));
    }
    let mut streamed = client.stream(&path).await?;
    let (events_tx, events_rx) = mpsc::channel(1024);
    tokio::spawn(async move {
        let mut pending: Vec<u8> = Vec::new();
        let reason = loop {
            match streamed.body.frame().await {
                None => break "the engine closed the event stream".to_owned(),
                Some(Err(error)) => break format!("reading the event stream: {error}"),
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    pending.extend_from_slice(&data);
                    while let Some(newline) = pending.iter().position(|byte| *byte == b'\n') {
                        let line: Vec<u8> = pending.drain(..=newline).collect();
                        if let Some(item) = decode_line(&line)
                            && events_tx.send(item).await.is_err()
                        {
                            return;
                        }
                    }
                }
            }
        };
        let _ = events_tx.send(StreamItem::Ended(reason)).await;
    });
    Ok(events_rx)
}

/// One line of the stream: an event, an undecodable line, or nothing (blank).
pub fn decode_line(line: &[u8]) -> Option<StreamItem> {
    let text = String::from_utf8_lossy(line);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    Some(match serde_json::from_str::<Event>(text) {
        Ok(event) => StreamItem::Event(event),
        Err(error) => StreamItem::Undecodable {
            line: text.chars().take(200).collect(),
            error: error.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_known_and_unknown_events_alike() {
        let line = br#"{"status":"start","id":"abc","Type":"container","Action":"start","Actor":{"ID":"abc","Attributes":{"name":"web","image":"busybox"}},"scope":"local","time":1700000000,"timeNano":1700000000123456789}"#;
        let Some(StreamItem::Event(event)) = decode_line(line) else {
            panic!("not decoded");
        };
        assert_eq!(event.kind, "container");
        assert_eq!(event.actor.id, "abc");
        assert_eq!(event.nanos(), 1_700_000_000_123_456_789);

        let future = br#"{"Type":"quantum","Action":"entangle","Actor":{"ID":"x"},"time":5}"#;
        let Some(StreamItem::Event(event)) = decode_line(future) else {
            panic!("unknown types must still decode");
        };
        assert_eq!(
            (event.kind.as_str(), event.nanos()),
            ("quantum", 5_000_000_000)
        );

        assert!(matches!(
            decode_line(b"{not json"),
            Some(StreamItem::Undecodable { .. })
        ));
        assert!(decode_line(b"\n").is_none());
    }

    #[test]
    fn actions_lose_their_arguments() {
        assert_eq!(normalize_action("exec_start: sh -c echo hi"), "exec_start");
        assert_eq!(normalize_action("health_status: healthy"), "health_status");
        assert_eq!(normalize_action("start"), "start");
        assert_eq!(
            since_parameter(1_700_000_000_000_000_001),
            "1700000000.000000001"
        );
    }

    proptest! {
        #[test]
        fn decoding_never_panics_and_only_blank_lines_vanish(
            line in proptest::collection::vec(any::<u8>(), 0..300)
        ) {
            let blank = String::from_utf8_lossy(&line).trim().is_empty();
            prop_assert_eq!(decode_line(&line).is_none(), blank);
        }
    }
}
