//! Requests to the engine's HTTP API: one connection per request, no API version pinned (the
//! engine answers in its own), answers decoded into `api` types, and errors typed so that an
//! engine that said no and an engine that could not be reached are told apart.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::endpoint::{ConnectError, Endpoint};

/// Requests other than the event stream give up after this long, so a hung engine shows as
/// `docker_up 0` rather than as a stuck exporter.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct EngineClient {
    endpoint: Endpoint,
    timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("the engine at {endpoint} did not answer {request} within {timeout:?}")]
    Timeout {
        endpoint: Endpoint,
        request: String,
        timeout: Duration,
    },
    #[error("the connection to the engine at {endpoint} failed during {request}: {source}")]
    Connection {
        endpoint: Endpoint,
        request: String,
        source: hyper::Error,
    },
    #[error("the engine refused {request} (HTTP {status}): {message}")]
    Refused {
        request: String,
        status: u16,
        /// The engine's own words.
        message: String,
    },
    #[error("the engine's answer to {request} could not be read: {source}")]
    Decode {
        request: String,
        source: serde_json::Error,
    },
}

impl EngineError {
    /// The engine answered that the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, EngineError::Refused { status: 404, .. })
    }

    /// The engine's own message for a refusal; the whole error otherwise.
    pub fn engine_message(&self) -> String {
        match self {
            EngineError::Refused { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }
}

/// A streamed answer (the event stream): the body, and the connection it arrives on.
pub struct Streamed {
    pub body: Incoming,
    // Held for as long as the body is read: the connection closes when its sender goes.
    _sender: SendRequest<Full<Bytes>>,
}

impl EngineClient {
    pub fn new(endpoint: Endpoint) -> EngineClient {
        EngineClient::with_timeout(endpoint, REQUEST_TIMEOUT)
    }

    /// A client whose requests give up after `timeout` (`--docker.timeout`).
    pub fn with_timeout(endpoint: Endpoint, timeout: Duration) -> EngineClient {
        EngineClient { endpoint, timeout }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// `GET path`, decoded.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, EngineError> {
        let body = self.exchange(Method::GET, path, Bytes::new()).await?;
        serde_json::from_slice(&body).map_err(|source| EngineError::Decode {
            request: format!("GET {path}"),
            source,
        })
    }

    /// `POST path` with a JSON body; the answer's body, undecoded.
    pub async fn post(&self, path: &str, body: &impl Serialize) -> Result<Bytes, EngineError> {
        let body = serde_json::to_vec(body).expect("request bodies serialize");
        self.exchange(Method::POST, path, Bytes::from(body)).await
    }

    /// `DELETE path`; the answer's body, undecoded.
    pub async fn delete(&self, path: &str) -> Result<Bytes, EngineError> {
        self.exchange(Method::DELETE, path, Bytes::new()).await
    }

    /// `GET /_ping`: is the engine there and answering.
    pub async fn ping(&self) -> Result<(), EngineError> {
        self.exchange(Method::GET, "/_ping", Bytes::new())
            .await
            .map(drop)
    }

    /// `GET path` whose body is read as it arrives, with no time limit on the body; only
    /// the connection and the answer's head must come within the timeout.
    pub async fn stream(&self, path: &str) -> Result<Streamed, EngineError> {
        let request_name = format!("GET {path}");
        let opened = async {
            let mut sender = self.handshake(&request_name).await?;
            let response = sender
                .send_request(request(Method::GET, path, Bytes::new()))
                .await
                .map_err(|source| self.connection_error(&request_name, source))?;
            if !response.status().is_success() {
                let status = response.status();
                let body = response.into_body().collect().await.ok();
                return Err(refusal(&request_name, status, body.map(|b| b.to_bytes())));
            }
            Ok(Streamed {
                body: response.into_body(),
                _sender: sender,
            })
        };
        self.within_timeout(&request_name, opened).await
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<Bytes, EngineError> {
        let request_name = format!("{method} {path}");
        let exchanged = async {
            let mut sender = self.handshake(&request_name).await?;
            let response = sender
                .send_request(request(method, path, body))
                .await
                .map_err(|source| self.connection_error(&request_name, source))?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|source| self.connection_error(&request_name, source))?
                .to_bytes();
            if status.is_success() {
                Ok(body)
            } else {
                Err(refusal(&request_name, status, Some(body)))
            }
        };
        self.within_timeout(&request_name, exchanged).await
    }

    async fn handshake(&self, request_name: &str) -> Result<SendRequest<Full<Bytes>>, EngineError> {
        let connection = self.endpoint.connect().await?;
        let (sender, connection) = http1::handshake(connection)
            .await
            .map_err(|source| self.connection_error(request_name, source))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "engine connection ended");
            }
        });
        Ok(sender)
    }

    async fn within_timeout<T>(
        &self,
        request_name: &str,
        work: impl Future<Output = Result<T, EngineError>>,
    ) -> Result<T, EngineError> {
        tokio::time::timeout(self.timeout, work)
            .await
            .unwrap_or_else(|_| {
                Err(EngineError::Timeout {
                    endpoint: self.endpoint.clone(),
                    request: request_name.to_owned(),
                    timeout: self.timeout,
                })
            })
    }

    fn connection_error(&self, request_name: &str, source: hyper::Error) -> EngineError {
        EngineError::Connection {
            endpoint: self.endpoint.clone(),
            request: request_name.to_owned(),
            source,
        }
    }
}

fn request(method: Method, path: &str, body: Bytes) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(path)
        // The engine ignores the host; HTTP/1.1 requires one.
        .header(header::HOST, "docker")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))
        .expect("a request of a method, a path and a body is well-formed")
}

/// The engine's error answers are `{"message": "..."}`; anything else is quoted as text.
fn refusal(request_name: &str, status: StatusCode, body: Option<Bytes>) -> EngineError {
    #[derive(serde::Deserialize)]
    struct Message {
        message: String,
    }
    let body = body.unwrap_or_default();
    let message = serde_json::from_slice::<Message>(&body)
        .map(|answer| answer.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(&body).trim().to_owned());
    EngineError::Refused {
        request: request_name.to_owned(),
        status: status.as_u16(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_carry_the_engines_words() {
        let error = refusal(
            "POST /containers/x/update",
            StatusCode::CONFLICT,
            Some(Bytes::from_static(
                br#"{"message":"Cannot update container: memory limit below usage"}"#,
            )),
        );
        assert_eq!(
            error.engine_message(),
            "Cannot update container: memory limit below usage"
        );
        assert!(!error.is_not_found());
        let missing = refusal(
            "GET /containers/x/json",
            StatusCode::NOT_FOUND,
            Some(Bytes::from_static(b"page not found\n")),
        );
        assert!(missing.is_not_found());
        assert_eq!(
            missing.to_string(),
            "the engine refused GET /containers/x/json (HTTP 404): page not found"
        );
    }

    #[tokio::test]
    async fn an_engine_that_is_not_there_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("docker.sock");
        let client = EngineClient::new(Endpoint::Unix(socket.clone()));
        let error = client.ping().await.unwrap_err();
        assert!(matches!(error, EngineError::Connect(_)), "{error:?}");
        assert_eq!(
            error.to_string(),
            format!(
                "no socket at {} (is the Docker Engine running? --docker.host or DOCKER_HOST names another)",
                socket.display()
            )
        );
    }

    #[tokio::test]
    async fn an_engine_that_never_answers_times_out() {
        // A listener that accepts nothing stands for a hung engine: the connect succeeds
        // (the kernel's backlog) and no answer ever comes.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let client = EngineClient {
            endpoint: Endpoint::Tcp(address),
            timeout: Duration::from_millis(200),
        };
        let error = client.ping().await.unwrap_err();
        assert!(matches!(error, EngineError::Timeout { .. }), "{error:?}");
        assert!(
            error.to_string().contains("did not answer GET /_ping"),
            "{error}"
        );
    }
}
