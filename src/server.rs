//! The HTTP server: `/metrics` (or `--web.telemetry-path`), the live page at `/` and its
//! JSON (`/api/v1/containers`), and `/healthz`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower_http::compression::CompressionLayer;

use crate::metrics::{self, Exposition, Format};
use crate::policy::state::unix_now;
use crate::scrape::Scraper;
use crate::web::Access;
use crate::web::tls::TlsListener;
use crate::web::{api, auth};

/// How the server answers, beyond where the metrics are.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub telemetry_path: String,
    /// Scrapes answered at once (`--web.max-requests`); 0 for no limit.
    pub max_requests: usize,
    /// The longest a scrape waits for its metrics (`--web.request-timeout`).
    pub request_timeout: Duration,
}

#[derive(Clone)]
struct AppState {
    scraper: Arc<Scraper>,
    telemetry_path: Arc<str>,
    /// Permits for scrapes in progress; `None` without a limit.
    scrape_permits: Option<Arc<Semaphore>>,
    max_requests: usize,
    request_timeout: Duration,
}

/// Serves until `shutdown` completes, then lets requests under way finish. The listener
/// is a parameter so that tests can bind port 0 and callers can report the address
/// actually bound.
pub async fn serve(
    listener: TcpListener,
    config: &ServerConfig,
    access: Access,
    scraper: Arc<Scraper>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = AppState {
        scraper,
        telemetry_path: Arc::from(config.telemetry_path.as_str()),
        scrape_permits: (config.max_requests > 0)
            .then(|| Arc::new(Semaphore::new(config.max_requests))),
        max_requests: config.max_requests,
        request_timeout: config.request_timeout,
    };
    let mut app = Router::new()
        .route(&config.telemetry_path, get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/", get(landing_page))
        .route("/api/v1/containers", get(containers_handler))
        .layer(CompressionLayer::new())
        .with_state(state);
    if let Some(users) = access.users {
        app = app.layer(axum::middleware::from_fn_with_state(users, auth::require));
    }
    match access.tls {
        Some(tls) => {
            let listener = TlsListener::new(listener, tls)?;
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}

/// The header in which Prometheus says how long it waits for a scrape.
const PROMETHEUS_TIMEOUT_HEADER: &str = "x-prometheus-scrape-timeout-seconds";

/// The flag's timeout, or Prometheus' when it is shorter.
fn scrape_timeout(headers: &HeaderMap, configured: Duration) -> Duration {
    headers
        .get(PROMETHEUS_TIMEOUT_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|seconds| seconds.is_finite() && *seconds > 0.0)
        .map_or(configured, |seconds| {
            configured.min(Duration::from_secs_f64(seconds))
        })
}

/// A collection for one request, within the request limit and its timeout; the permit is
/// for the caller to hold while it answers. `Err` is the answer when there is none.
async fn collection(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(Arc<Exposition>, Option<OwnedSemaphorePermit>), Response> {
    let permit = match &state.scrape_permits {
        Some(permits) => match Arc::clone(permits).try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                return Err((
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "{} scrapes are under way, the most --web.max-requests allows; try again\n",
                        state.max_requests
                    ),
                )
                    .into_response());
            }
        },
        None => None,
    };
    let timeout = scrape_timeout(headers, state.request_timeout);
    match tokio::time::timeout(timeout, state.scraper.scrape()).await {
        Ok(Ok(exposition)) => Ok((exposition, permit)),
        Ok(Err(error)) => {
            Err((StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n")).into_response())
        }
        Err(_) => {
            tracing::warn!(?timeout, "a scrape timed out waiting for its metrics");
            Err((
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the metrics were not collected within {timeout:?}\n"),
            )
                .into_response())
        }
    }
}

async fn metrics_handler(State(state): State<AppState>, headers: HeaderMap) -> Response {
    // The permit is held until the last piece of the body is taken: a slow reader counts
    // against the limit.
    let (exposition, permit) = match collection(&state, &headers).await {
        Ok(collected) => collected,
        Err(answer) => return answer,
    };
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    let format = Format::negotiate(accept);
    let body = if exposition.sample_count() <= SAMPLES_ENCODED_IN_PLACE {
        // Written here at once: handing a small text to a blocking thread and back costs
        // more than writing it.
        let text = metrics::encode(&exposition, format);
        futures::stream::once(async move {
            drop(permit);
            Ok::<_, std::convert::Infallible>(text)
        })
        .boxed()
    } else {
        pieces_from_a_blocking_thread(exposition, format, permit).boxed()
    };
    (
        [(header::CONTENT_TYPE, format.content_type())],
        Body::from_stream(body),
    )
        .into_response()
}

/// Samples an exposition may have to be encoded where it is asked for, on the runtime's
/// worker (some 0.5 million instructions, well under a millisecond), rather than on a
/// blocking thread: a host with a dozen containers or so.
const SAMPLES_ENCODED_IN_PLACE: usize = 1_000;

/// The text of a large exposition, encoded on a blocking thread and sent as it is written:
/// a few pieces in flight at most, however many series there are. The permit is held until
/// the last piece is taken.
fn pieces_from_a_blocking_thread(
    exposition: Arc<Exposition>,
    format: Format,
    permit: Option<OwnedSemaphorePermit>,
) -> impl futures::Stream<Item = Result<String, std::convert::Infallible>> {
    let (pieces, receiver) = tokio::sync::mpsc::channel::<String>(2);
    tokio::task::spawn_blocking(move || {
        metrics::encode_in_pieces(&exposition, format, &mut |piece| {
            // The scraper hung up: the rest is not wanted.
            let _ = pieces.blocking_send(piece);
        });
    });
    // Fused: the compression layer may ask again after the end.
    futures::stream::unfold((receiver, permit), |(mut receiver, permit)| async move {
        let piece = receiver.recv().await?;
        Some((Ok(piece), (receiver, permit)))
    })
    .fuse()
}

/// The live page: plain HTML, CSS and JavaScript, in the binary.
const PAGE: &str = include_str!("web/page.html");

async fn landing_page(State(state): State<AppState>) -> Html<String> {
    Html(
        PAGE.replace("{{telemetry_path}}", &html_escape(&state.telemetry_path))
            .replace("{{version}}", env!("CARGO_PKG_VERSION")),
    )
}

/// `/api/v1/containers`: the containers of one collection, as JSON.
async fn containers_handler(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (exposition, _permit) = match collection(&state, &headers).await {
        Ok(collected) => collected,
        Err(answer) => return answer,
    };
    Json(api::containers(&exposition, unix_now())).into_response()
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Desc, LabelSet, gauge};

    #[tokio::test]
    async fn a_large_exposition_is_streamed_whole_and_in_order() {
        static BYTES: Desc = gauge("test_bytes", "Bytes.");
        let mut exposition = Exposition::default();
        for index in 0..20_000u64 {
            let target = exposition.add_target(LabelSet::new(vec![(
                "id".to_owned(),
                format!("/bench/c{index:05}"),
            )]));
            exposition.push(&BYTES, Some(target), Vec::new(), index);
        }
        assert!(exposition.sample_count() > SAMPLES_ENCODED_IN_PLACE);
        let whole = metrics::encode(&exposition, Format::Text);
        // More pieces than the channel holds: the encoder waits for the sender.
        let pieces: Vec<String> =
            pieces_from_a_blocking_thread(Arc::new(exposition), Format::Text, None)
                .map(|piece| piece.unwrap())
                .collect()
                .await;
        assert!(pieces.len() > 2, "{} pieces", pieces.len());
        assert_eq!(pieces.concat(), whole);
    }

    #[test]
    fn prometheus_timeout_applies_only_when_shorter() {
        let configured = Duration::from_secs(10);
        let mut headers = HeaderMap::new();
        assert_eq!(scrape_timeout(&headers, configured), configured);
        headers.insert(PROMETHEUS_TIMEOUT_HEADER, "2.5".parse().unwrap());
        assert_eq!(
            scrape_timeout(&headers, configured),
            Duration::from_millis(2500)
        );
        headers.insert(PROMETHEUS_TIMEOUT_HEADER, "30".parse().unwrap());
        assert_eq!(scrape_timeout(&headers, configured), configured);
        for nonsense in ["-1", "0", "NaN", "soon"] {
            headers.insert(PROMETHEUS_TIMEOUT_HEADER, nonsense.parse().unwrap());
            assert_eq!(
                scrape_timeout(&headers, configured),
                configured,
                "{nonsense}"
            );
        }
    }
}
