//! Basic authentication against the bcrypt hashes of `basic_auth_users`: every path asks
//! for it when users are configured.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

/// Credentials already checked are remembered, up to this many, so a scrape every few
/// seconds does not pay for a bcrypt comparison each time.
const REMEMBERED: usize = 256;

pub struct Users {
    /// User name → bcrypt hash.
    hashes: BTreeMap<String, String>,
    verified: Mutex<HashSet<(String, String)>>,
}

impl Users {
    pub fn new(hashes: BTreeMap<String, String>) -> Users {
        Users {
            hashes,
            verified: Mutex::new(HashSet::new()),
        }
    }

    async fn verify(&self, user: String, password: String) -> bool {
        let Some(hash) = self.hashes.get(&user).cloned() else {
            return false;
        };
        let pair = (user, password);
        if self
            .verified
            .lock()
            .expect("credentials lock")
            .contains(&pair)
        {
            return true;
        }
        // bcrypt is slow on purpose: off the runtime's threads.
        let password = pair.1.clone();
        let matches =
            tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
                .await
                .unwrap_or(false);
        if matches {
            let mut verified = self.verified.lock().expect("credentials lock");
            if verified.len() >= REMEMBERED {
                verified.clear();
            }
            verified.insert(pair);
        }
        matches
    }
}

/// The user and password of an `Authorization: Basic` header.
fn credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Middleware: the request goes on with valid credentials, and is answered 401 otherwise.
pub async fn require(State(users): State<Arc<Users>>, request: Request, next: Next) -> Response {
    if let Some((user, password)) = credentials(request.headers())
        && users.verify(user, password).await
    {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Basic realm=\"stevedore\"")],
        "Unauthorized\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_read_from_the_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(credentials(&headers), None);
        // "prometheus:pass:word" — a password may hold colons.
        headers.insert(
            header::AUTHORIZATION,
            "Basic cHJvbWV0aGV1czpwYXNzOndvcmQ=".parse().unwrap(),
        );
        assert_eq!(
            credentials(&headers),
            Some(("prometheus".to_owned(), "pass:word".to_owned()))
        );
        headers.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(credentials(&headers), None);
        headers.insert(header::AUTHORIZATION, "Basic !!!".parse().unwrap());
        assert_eq!(credentials(&headers), None);
    }

    #[tokio::test]
    async fn only_the_right_password_of_a_known_user_passes() {
        let hash = bcrypt::hash("secret", 4).unwrap();
        let users = Users::new(BTreeMap::from([("prometheus".to_owned(), hash)]));
        assert!(users.verify("prometheus".into(), "secret".into()).await);
        // Remembered, and still only for the right password.
        assert!(users.verify("prometheus".into(), "secret".into()).await);
        assert!(!users.verify("prometheus".into(), "wrong".into()).await);
        assert!(!users.verify("nobody".into(), "secret".into()).await);
    }
}
