//! The web side besides `/metrics`: who may talk to the server (the `--web.config.file`
//! document, TLS, basic auth), and the live page with its JSON.
//!
//! - `config`: the file, in the Prometheus exporter-toolkit's format;
//! - `tls`: the rustls configuration and a listener that completes handshakes;
//! - `auth`: basic authentication against bcrypt hashes;
//! - `api`: `/api/v1/containers`, the JSON the live page polls;
//! - `page.html`: the live page at `/`.

pub mod api;
pub mod auth;
pub mod config;
pub mod tls;

use std::path::Path;
use std::sync::Arc;

/// What a web configuration file asks of the server, its files read.
#[derive(Default)]
pub struct Access {
    pub tls: Option<rustls::ServerConfig>,
    pub users: Option<Arc<auth::Users>>,
}

/// Reads `--web.config.file` and every file it names; any problem names the file.
pub fn load(path: &Path) -> Result<Access, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("--web.config.file={}: {error}", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let problem = |problem: String| format!("--web.config.file={}: {problem}", path.display());
    let config = config::parse(&text, dir).map_err(problem)?;
    let tls = match &config.tls {
        Some(settings) => Some(tls::server_config(settings).map_err(problem)?),
        None => None,
    };
    let users = (!config.users.is_empty()).then(|| Arc::new(auth::Users::new(config.users)));
    Ok(Access { tls, users })
}
