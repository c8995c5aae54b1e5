//! A small client of Prometheus' HTTP API over plain HTTP/1.1 (hyper, as the engine's client):
//! instant and range queries, label values and the server's retention, with errors that
//! name the URL and say whether Prometheus could not be reached, is not Prometheus, or
//! refused a query.

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;

use super::api::{self, AnswerError, Series};

/// A range query over a week at one point a minute takes Prometheus a few seconds per
/// thousand series; a minute leaves room before a hung server is given up on.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where Prometheus answers: `http://host:port/prefix` (the prefix is its
/// `--web.route-prefix`, when it has one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrometheusUrl {
    /// As given, for messages.
    pub text: String,
    /// A name or an address (an IPv6 address without its brackets).
    pub host: String,
    pub port: u16,
    /// Empty, or a path starting with `/` and not ending with one.
    pub prefix: String,
}

/// Reads `--prometheus.url`: `http://host[:port][/prefix]`, or `host[:port]` alone (port 80
/// by default, as in any URL; Prometheus itself listens on 9090).
pub fn parse_url(text: &str) -> Result<PrometheusUrl, String> {
    let refuse = |why: &str| {
        Err(format!(
            "--prometheus.url={text:?}: {why}; write e.g. http://localhost:9090"
        ))
    };
    let trimmed = text.trim();
    let rest = match trimmed.split_once("://") {
        Some(("http", rest)) => rest,
        Some(("https", _)) => {
            return refuse(
                "stevedore speaks plain HTTP to Prometheus, not HTTPS; reach it over http:// \
                 (its port on the host, or a tunnel)",
            );
        }
        Some((scheme, _)) => return refuse(&format!("`{scheme}` is not http")),
        None => trimmed,
    };
    if rest.contains(['?', '#']) {
        return refuse("the URL takes no query or fragment");
    }
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return refuse("credentials in the URL are not supported");
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        match bracketed.split_once(']') {
            Some((host, "")) => (host, None),
            Some((host, port)) if port.starts_with(':') => (host, Some(&port[1..])),
            _ => return refuse("an IPv6 address is written [address] or [address]:port"),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return refuse("it names no host");
    }
    let port = match port {
        None => 80,
        Some(port) => match port.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => return refuse(&format!("{port:?} is not a port number")),
        },
    };
    Ok(PrometheusUrl {
        text: trimmed.trim_end_matches('/').to_owned(),
        host: host.to_owned(),
        port,
        prefix: path.trim_end_matches('/').to_owned(),
    })
}

/// `application/x-www-form-urlencoded` pairs, as a URL's query: every byte but the
/// unreserved ones (RFC 3986) percent-encoded, so that PromQL's `{`, `"`, `=~`, `+` and
/// spaces arrive as written.
pub fn query_string(pairs: &[(&str, &str)]) -> String {
    let encode = |text: &str| {
        let mut encoded = String::with_capacity(text.len());
        for byte in text.bytes() {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                encoded.push(byte as char);
            } else {
                encoded.push_str(&format!("%{byte:02X}"));
            }
        }
        encoded
    };
    pairs
        .iter()
        .map(|(key, value)| format!("{}={}", encode(key), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    #[error(
        "cannot reach Prometheus at {url}: {reason} (is it running, and is --prometheus.url its address?)"
    )]
    Unreachable { url: String, reason: String },
    #[error("Prometheus at {url} did not answer {request} within {timeout:?}")]
    Timeout {
        url: String,
        request: String,
        timeout: Duration,
    },
    #[error(
        "{url} is not answering as Prometheus does: {request} got {answer}. Is --prometheus.url \
         the address of Prometheus, with its --web.route-prefix if it has one?"
    )]
    NotPrometheus {
        url: String,
        request: String,
        answer: String,
    },
    #[error("Prometheus at {url} refused {what}: {reason}")]
    Refused {
        url: String,
        what: String,
        reason: String,
    },
}

pub struct Prometheus {
    url: PrometheusUrl,
}

impl Prometheus {
    pub fn new(url: PrometheusUrl) -> Prometheus {
        Prometheus { url }
    }

    pub fn url(&self) -> &str {
        &self.url.text
    }

    /// An instant query at `time` (seconds since the epoch), or at Prometheus' now.
    pub async fn query(
        &self,
        expr: &str,
        time: Option<f64>,
    ) -> Result<Vec<Series>, PrometheusError> {
        let time = time.map(seconds);
        let mut pairs = vec![("query", expr)];
        if let Some(time) = &time {
            pairs.push(("time", time));
        }
        let body = self.get("/api/v1/query", &pairs).await?;
        api::series(&body).map_err(|error| self.answer_error(&format!("the query {expr}"), error))
    }

    /// A range query: points every `step` from `start` to `end` (seconds since the epoch).
    pub async fn query_range(
        &self,
        expr: &str,
        start: f64,
        end: f64,
        step: Duration,
    ) -> Result<Vec<Series>, PrometheusError> {
        let (start, end) = (seconds(start), seconds(end));
        let step = format!("{:.3}", step.as_secs_f64());
        let body = self
            .get(
                "/api/v1/query_range",
                &[
                    ("query", expr),
                    ("start", &start),
                    ("end", &end),
                    ("step", &step),
                ],
            )
            .await?;
        api::series(&body).map_err(|error| self.answer_error(&format!("the query {expr}"), error))
    }

    /// Every value a label has on any series.
    pub async fn label_values(&self, label: &str) -> Result<Vec<String>, PrometheusError> {
        let path = format!("/api/v1/label/{label}/values");
        let body = self.get(&path, &[]).await?;
        api::strings(&body).map_err(|error| self.answer_error(&path, error))
    }

    /// How long the server keeps samples (`None`: no time bound, only a size).
    pub async fn retention(&self) -> Result<Option<Duration>, PrometheusError> {
        let path = "/api/v1/status/runtimeinfo";
        let body = self.get(path, &[]).await?;
        api::retention(&body).map_err(|error| self.answer_error(path, error))
    }

    fn answer_error(&self, what: &str, error: AnswerError) -> PrometheusError {
        match error {
            AnswerError::Refused { .. } => PrometheusError::Refused {
                url: self.url.text.clone(),
                what: what.to_owned(),
                reason: error.to_string(),
            },
            AnswerError::Malformed(answer) => PrometheusError::NotPrometheus {
                url: self.url.text.clone(),
                request: what.to_owned(),
                answer,
            },
        }
    }

    /// `GET prefix+path?query`: the body of a success, or of a refusal in the API's words
    /// (Prometheus answers 400, 422 and 503 with its error envelope, read by `api`).
    async fn get(&self, path: &str, pairs: &[(&str, &str)]) -> Result<String, PrometheusError> {
        let mut target = format!("{}{path}", self.url.prefix);
        if !pairs.is_empty() {
            target.push('?');
            target.push_str(&query_string(pairs));
        }
        let request_name = format!("GET {path}");
        let exchange = async {
            let address = (self.url.host.as_str(), self.url.port);
            let stream =
                tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(address))
                    .await
                    .map_err(|_| {
                        self.unreachable(format!("no connection within {CONNECT_TIMEOUT:?}"))
                    })?
                    .map_err(|error| self.unreachable(error.to_string()))?;
            let (mut sender, connection) = http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|error| self.unreachable(error.to_string()))?;
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "Prometheus connection ended");
                }
            });
            let host = if self.url.host.contains(':') {
                format!("[{}]:{}", self.url.host, self.url.port)
            } else {
                format!("{}:{}", self.url.host, self.url.port)
            };
            let request = Request::get(target.as_str())
                .header(header::HOST, host)
                .header(header::ACCEPT, "application/json")
                .body(Empty::<Bytes>::new())
                .map_err(|error| self.unreachable(format!("a request it cannot send: {error}")))?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|error| self.unreachable(error.to_string()))?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|error| self.unreachable(error.to_string()))?
                .to_bytes();
            let text = String::from_utf8_lossy(&body).into_owned();
            if status.is_success() || is_api_refusal(status, &text) {
                Ok(text)
            } else {
                Err(PrometheusError::NotPrometheus {
                    url: self.url.text.clone(),
                    request: request_name.clone(),
                    answer: format!("HTTP {status}: {}", api::excerpt(&text)),
                })
            }
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(PrometheusError::Timeout {
                    url: self.url.text.clone(),
                    request: request_name.clone(),
                    timeout: REQUEST_TIMEOUT,
                })
            })
    }

    fn unreachable(&self, reason: String) -> PrometheusError {
        PrometheusError::Unreachable {
            url: self.url.text.clone(),
            reason,
        }
    }
}

/// Whether an error status carries Prometheus' error envelope (its refusals of a query),
/// rather than being some other server's page.
fn is_api_refusal(status: StatusCode, body: &str) -> bool {
    matches!(status.as_u16(), 400 | 422 | 503) && body.contains("\"errorType\"")
}

/// Seconds since the epoch, to the millisecond, as the API takes times.
fn seconds(time: f64) -> String {
    format!("{time:.3}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn urls_of_prometheus() {
        let url = parse_url("http://prometheus.local:9090/").unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.prefix.as_str()),
            ("prometheus.local", 9090, "")
        );
        assert_eq!(url.text, "http://prometheus.local:9090");
        let prefixed = parse_url("http://10.0.0.5:9090/prometheus/").unwrap();
        assert_eq!(prefixed.prefix, "/prometheus");
        let bare = parse_url("localhost:9090").unwrap();
        assert_eq!((bare.host.as_str(), bare.port), ("localhost", 9090));
        assert_eq!(parse_url("http://monitoring").unwrap().port, 80);
        let v6 = parse_url("http://[::1]:9090").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 9090));
        for (bad, why) in [
            ("https://prometheus:9090", "not HTTPS"),
            ("ftp://x", "`ftp` is not http"),
            ("http://:9090", "no host"),
            ("http://host:ninety", "not a port number"),
            ("http://host:0", "not a port number"),
            ("http://user:secret@host:9090", "credentials"),
            ("http://host:9090/?x=1", "no query"),
            ("http://[::1", "IPv6"),
        ] {
            let error = parse_url(bad).unwrap_err();
            assert!(error.contains(why), "{bad}: {error}");
        }
    }

    #[test]
    fn query_strings_encode_promql() {
        assert_eq!(
            query_string(&[("query", "up{job=~\"a|b\"} + 1"), ("step", "60.000")]),
            "query=up%7Bjob%3D~%22a%7Cb%22%7D%20%2B%201&step=60.000"
        );
    }

    /// `%XX` back into bytes (the test's own reading of what `query_string` wrote).
    fn percent_decoded(text: &str) -> Vec<u8> {
        let bytes = text.as_bytes();
        let mut decoded = Vec::new();
        let mut index = 0;
        while index < bytes.len() {
            if bytes[index] == b'%' {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).unwrap();
                decoded.push(u8::from_str_radix(hex, 16).unwrap());
                index += 3;
            } else {
                decoded.push(bytes[index]);
                index += 1;
            }
        }
        decoded
    }

    /// Any text of up to 40 characters.
    const SHORT_TEXT: &str = "\\PC{0,40}";

    proptest! {
        #[test]
        fn an_accepted_url_is_http_with_a_host_and_a_refusal_says_how(text in SHORT_TEXT) {
            match parse_url(&text) {
                Ok(url) => {
                    assert!(text.trim().starts_with("http://") || !text.contains("://"));
                    assert!(!url.host.is_empty() && url.port > 0);
                }
                Err(why) => assert!(why.contains("write e.g. http://localhost:9090"), "{}", why),
            }
        }

        #[test]
        fn query_strings_hold_only_url_characters_and_decode_back(value in SHORT_TEXT) {
            let encoded = query_string(&[("query", &value)]);
            assert!(encoded.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-._~%=".contains(&byte)));
            let value_part = encoded.strip_prefix("query=").expect("the key first");
            assert_eq!(percent_decoded(value_part), value.as_bytes());
        }
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable_and_named() {
        // A port just bound and released is, for a moment, one nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = parse_url(&format!("http://127.0.0.1:{port}")).unwrap();
        let error = Prometheus::new(url).retention().await.unwrap_err();
        assert!(
            matches!(error, PrometheusError::Unreachable { .. }),
            "{error:?}"
        );
        assert!(
            error.to_string().starts_with(&format!(
                "cannot reach Prometheus at http://127.0.0.1:{port}: "
            )),
            "{error}"
        );
    }
}
