//! The engine's event stream (`GET /events`), read line by line into lenient event
//! records.
//!
//! The stream is read here rather than through bollard because bollard decodes each event
//! into enums and ends the whole stream at the first value it does not know; newer engines
//! add event types and actions. Here every line that is JSON becomes an `Event` with its
//! type and action as plain strings, and a line that is not is reported and skipped.

use std::path::PathBuf;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::sync::mpsc;

/// Where the engine listens, from `--docker.host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp(String),
}

impl Endpoint {
    pub fn parse(host: &str) -> Result<Endpoint, String> {
        if let Some(path) = host.strip_prefix("unix://") {
            Ok(Endpoint::Unix(PathBuf::from(path)))
        } else if let Some(address) = host
            .strip_prefix("tcp://")
            .or_else(|| host.strip_prefix("http://"))
        {
            Ok(Endpoint::Tcp(address.trim_end_matches('/').to_owned()))
        } else {
            Err(format!(
                "docker host {host:?} is neither unix:///path nor tcp://host:port"
            ))
        }
    }
}

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

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("connecting to the engine at {endpoint:?}: {source}")]
    Connect {
        endpoint: Endpoint,
        source: std::io::Error,
    },
    #[error("engine event request: {0}")]
    Http(#[from] hyper::Error),
    #[error("engine answered {status} to the event request")]
    Status { status: hyper::StatusCode },
}

/// Opens the event stream, replaying from `since_nanos` when given. Items arrive on the
/// returned channel until the connection ends, which is always announced by `Ended`.
pub async fn follow(
    endpoint: &Endpoint,
    since_nanos: Option<i64>,
) -> Result<mpsc::Receiver<StreamItem>, StreamError> {
    let mut uri = "/events".to_owned();
    if let Some(nanos) = since_nanos {
        uri.push_str(&format!("?since={}", since_parameter(nanos)));
    }
    let request = hyper::Request::get(uri)
        .header(hyper::header::HOST, "docker")
        .body(Empty::<Bytes>::new())
        .expect("a static request is well-formed");

    let connect_error = |source| StreamError::Connect {
        endpoint: endpoint.clone(),
        source,
    };
    let mut sender = match endpoint {
        Endpoint::Unix(path) => {
            let stream = tokio::net::UnixStream::connect(path)
                .await
                .map_err(connect_error)?;
            handshake(stream).await?
        }
        Endpoint::Tcp(address) => {
            let stream = tokio::net::TcpStream::connect(address)
                .await
                .map_err(connect_error)?;
            handshake(stream).await?
        }
    };
    let response = sender.send_request(request).await?;
    if !response.status().is_success() {
        return Err(StreamError::Status {
            status: response.status(),
        });
    }
    let (events_tx, events_rx) = mpsc::channel(1024);
    let mut body = response.into_body();
    tokio::spawn(async move {
        // Keeps the connection's sender alive for as long as the body is read.
        let _sender = sender;
        let mut pending: Vec<u8> = Vec::new();
        let reason = loop {
            match body.frame().await {
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

async fn handshake<S>(
    stream: S,
) -> Result<hyper::client::conn::http1::SendRequest<Empty<Bytes>>, StreamError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "engine event connection ended");
        }
    });
    Ok(sender)
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
    fn endpoints_from_docker_host() {
        assert_eq!(
            Endpoint::parse("unix:///var/run/docker.sock"),
            Ok(Endpoint::Unix(PathBuf::from("/var/run/docker.sock")))
        );
        assert_eq!(
            Endpoint::parse("tcp://127.0.0.1:2375"),
            Ok(Endpoint::Tcp("127.0.0.1:2375".to_owned()))
        );
        assert!(Endpoint::parse("ssh://host").is_err());
    }

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
