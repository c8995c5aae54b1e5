//! The HTTP server: `/metrics` (or `--web.telemetry-path`), a landing page at `/`, and
//! `/healthz`.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;

use crate::metrics::{self, Format};
use crate::scrape::Scraper;

#[derive(Clone)]
struct AppState {
    scraper: Arc<Scraper>,
    telemetry_path: Arc<str>,
}

/// Serves until `shutdown` completes. The listener is a parameter so that tests can bind
/// port 0 and callers can report the address actually bound.
pub async fn serve(
    listener: TcpListener,
    telemetry_path: &str,
    scraper: Arc<Scraper>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = AppState {
        scraper,
        telemetry_path: Arc::from(telemetry_path),
    };
    let app = Router::new()
        .route(telemetry_path, get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/", get(landing_page))
        .layer(CompressionLayer::new())
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn metrics_handler(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    let format = Format::negotiate(accept);
    let exposition = match state.scraper.scrape().await {
        Ok(exposition) => exposition,
        Err(error) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n")).into_response();
        }
    };
    // Encoded on a blocking thread and sent as it is written: a few pieces in flight at
    // most, however many series there are.
    let (pieces, receiver) = tokio::sync::mpsc::channel::<String>(4);
    tokio::task::spawn_blocking(move || {
        metrics::encode_in_pieces(&exposition, format, &mut |piece| {
            // The scraper hung up: the rest is not wanted.
            let _ = pieces.blocking_send(piece);
        });
    });
    // Fused: the compression layer may ask again after the end.
    let body = futures::StreamExt::fuse(futures::stream::unfold(
        receiver,
        |mut receiver| async move {
            let piece = receiver.recv().await?;
            Some((Ok::<_, std::convert::Infallible>(piece), receiver))
        },
    ));
    (
        [(header::CONTENT_TYPE, format.content_type())],
        Body::from_stream(body),
    )
        .into_response()
}

async fn landing_page(State(state): State<AppState>) -> Html<String> {
    let path = html_escape(&state.telemetry_path);
    Html(format!(
        "<!DOCTYPE html>\n<html><head><title>stevedore</title></head><body>\n\
         <h1>stevedore {version}</h1>\n\
         <p>Docker container usage, limits and lifecycle, for Prometheus.</p>\n\
         <ul><li><a href=\"{path}\">Metrics</a></li><li><a href=\"/healthz\">Health</a></li></ul>\n\
         </body></html>\n",
        version = env!("CARGO_PKG_VERSION"),
    ))
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
