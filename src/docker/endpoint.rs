//! Where the engine listens: `--docker.host` / `DOCKER_HOST`, read the way the Docker CLI
//! reads it, and the connection to it.

use std::fmt;
use std::io;
use std::path::PathBuf;

use hyper_util::rt::TokioIo;

pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";
/// The Docker CLI's port for `tcp://host` without one (plain HTTP).
const DEFAULT_TCP_PORT: u16 = 2375;

/// The forms accepted, for the message that refuses the rest.
pub const ACCEPTED_FORMS: &str = "unix:///path/to/docker.sock, unix:// (the default socket), \
     /path/to/docker.sock, tcp://host:port, tcp://host (port 2375), host:port";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    /// `host:port`.
    Tcp(String),
}

/// A byte stream to the engine, over either kind of endpoint.
pub type Connection = TokioIo<Box<dyn Stream>>;

pub trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Stream for T {}

impl Endpoint {
    /// Reads a host as the Docker CLI reads `DOCKER_HOST`: `unix://` with an optional path,
    /// `tcp://` with optional host and port, and a bare `host:port` as TCP. A bare absolute
    /// path is taken as a socket (the CLI would misread it as a TCP path). Anything else
    /// (`ssh://`, `npipe://`, `http://`, a path in a TCP address) is refused with the forms
    /// that are accepted.
    pub fn parse(host: &str) -> Result<Endpoint, String> {
        let host = host.trim();
        let refuse = |why: &str| {
            Err(format!(
                "docker host {host:?}: {why}; accepted forms: {ACCEPTED_FORMS}"
            ))
        };
        if host.is_empty() {
            return Ok(Endpoint::Unix(PathBuf::from(DEFAULT_SOCKET)));
        }
        if host.starts_with('/') {
            return Ok(Endpoint::Unix(PathBuf::from(host)));
        }
        let (scheme, rest) = match host.split_once("://") {
            Some((scheme, rest)) => (scheme, rest),
            None => ("tcp", host),
        };
        match scheme {
            "unix" if rest.is_empty() => Ok(Endpoint::Unix(PathBuf::from(DEFAULT_SOCKET))),
            "unix" if rest.starts_with('/') => Ok(Endpoint::Unix(PathBuf::from(rest))),
            "unix" => refuse("a unix socket path must be absolute"),
            "tcp" => {
                let address = rest.strip_suffix('/').unwrap_or(rest);
                if address.contains('/') {
                    return refuse("a TCP address has no path");
                }
                if address.is_empty() {
                    return Ok(Endpoint::Tcp(format!("localhost:{DEFAULT_TCP_PORT}")));
                }
                let address = match address.strip_prefix(':') {
                    Some(port) => format!("localhost:{port}"),
                    None => address.to_owned(),
                };
                let port = if address.starts_with('[') {
                    match address.split_once(']') {
                        Some((_, "")) => None,
                        Some((_, after)) if after.starts_with(':') => Some(&after[1..]),
                        _ => {
                            return refuse(
                                "an IPv6 address is written [address] or [address]:port",
                            );
                        }
                    }
                } else {
                    address.rsplit_once(':').map(|(_, port)| port)
                };
                match port {
                    None => Ok(Endpoint::Tcp(format!("{address}:{DEFAULT_TCP_PORT}"))),
                    Some(port) if port.parse::<u16>().is_ok() => Ok(Endpoint::Tcp(address)),
                    Some(_) => refuse("the port is not a number from 0 to 65535"),
                }
            }
            "ssh" => refuse(
                "ssh:// is not supported; forward the remote socket \
                 (ssh -nNT -L /tmp/docker.sock:/var/run/docker.sock host) and use unix:///tmp/docker.sock",
            ),
            "npipe" => refuse("named pipes exist only on Windows"),
            _ => refuse(&format!("{scheme}:// is not a Docker host scheme")),
        }
    }

    /// Opens a connection, with an error that says what was tried and why it failed.
    pub async fn connect(&self) -> Result<Connection, ConnectError> {
        let connected: io::Result<Box<dyn Stream>> = match self {
            Endpoint::Unix(path) => tokio::net::UnixStream::connect(path)
                .await
                .map(|stream| Box::new(stream) as Box<dyn Stream>),
            Endpoint::Tcp(address) => tokio::net::TcpStream::connect(address.as_str())
                .await
                .map(|stream| Box::new(stream) as Box<dyn Stream>),
        };
        connected.map(TokioIo::new).map_err(|source| ConnectError {
            endpoint: self.clone(),
            source,
        })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(formatter, "unix://{}", path.display()),
            Endpoint::Tcp(address) => write!(formatter, "tcp://{address}"),
        }
    }
}

/// A connection that could not be made, told in the words a user acts on.
#[derive(Debug)]
pub struct ConnectError {
    pub endpoint: Endpoint,
    pub source: io::Error,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        let endpoint = &self.endpoint;
        match (endpoint, self.source.kind()) {
            (Endpoint::Unix(path), io::ErrorKind::NotFound) => write!(
                formatter,
                "no socket at {} (is the Docker Engine running? --docker.host or DOCKER_HOST names another)",
                path.display()
            ),
            (Endpoint::Unix(path), io::ErrorKind::PermissionDenied) => write!(
                formatter,
                "permission denied on the socket {} (run as root or as a member of its group, usually `docker`)",
                path.display()
            ),
            (_, io::ErrorKind::ConnectionRefused) => {
                write!(
                    formatter,
                    "connection refused at {endpoint} (no engine listens there)"
                )
            }
            (_, _) => write!(formatter, "cannot connect to {endpoint}: {}", self.source),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tcp(address: &str) -> Result<Endpoint, String> {
        Ok(Endpoint::Tcp(address.to_owned()))
    }

    fn unix(path: &str) -> Result<Endpoint, String> {
        Ok(Endpoint::Unix(PathBuf::from(path)))
    }

    #[test]
    fn hosts_the_docker_cli_accepts() {
        assert_eq!(
            Endpoint::parse("unix:///var/run/docker.sock"),
            unix(DEFAULT_SOCKET)
        );
        assert_eq!(Endpoint::parse("unix://"), unix(DEFAULT_SOCKET));
        assert_eq!(Endpoint::parse(""), unix(DEFAULT_SOCKET));
        assert_eq!(
            Endpoint::parse("/run/user/1000/docker.sock"),
            unix("/run/user/1000/docker.sock")
        );
        assert_eq!(
            Endpoint::parse("tcp://127.0.0.1:2375"),
            tcp("127.0.0.1:2375")
        );
        assert_eq!(
            Endpoint::parse("tcp://127.0.0.1:2375/"),
            tcp("127.0.0.1:2375")
        );
        assert_eq!(
            Endpoint::parse("tcp://engine.local"),
            tcp("engine.local:2375")
        );
        assert_eq!(Endpoint::parse("tcp://"), tcp("localhost:2375"));
        assert_eq!(Endpoint::parse("localhost:1"), tcp("localhost:1"));
        assert_eq!(Endpoint::parse("tcp://[::1]:2375"), tcp("[::1]:2375"));
        assert_eq!(Endpoint::parse("tcp://[::1]"), tcp("[::1]:2375"));
    }

    #[test]
    fn other_hosts_are_refused_with_the_accepted_forms() {
        for host in [
            "http://127.0.0.1:2375",
            "ssh://me@engine",
            "npipe:////./pipe/docker_engine",
            "tcp://127.0.0.1:2375/path",
            "tcp://127.0.0.1:http",
            "unix://relative.sock",
        ] {
            let error = Endpoint::parse(host).expect_err(host);
            assert!(error.contains(host), "{error}");
            assert!(error.contains(ACCEPTED_FORMS), "{error}");
        }
    }

    #[test]
    fn connect_errors_say_what_was_tried() {
        let message = |endpoint: Endpoint, kind: io::ErrorKind| {
            ConnectError {
                endpoint,
                source: io::Error::from(kind),
            }
            .to_string()
        };
        assert!(
            message(Endpoint::Unix("/x.sock".into()), io::ErrorKind::NotFound)
                .starts_with("no socket at /x.sock")
        );
        assert!(
            message(
                Endpoint::Unix("/x.sock".into()),
                io::ErrorKind::PermissionDenied
            )
            .starts_with("permission denied on the socket /x.sock")
        );
        assert!(
            message(
                Endpoint::Tcp("127.0.0.1:1".into()),
                io::ErrorKind::ConnectionRefused
            )
            .starts_with("connection refused at tcp://127.0.0.1:1")
        );
    }

    /// Text of the characters host names, addresses and socket paths are made of.
    const HOST_LIKE: &str = "[a-z0-9.:/\\[\\]]{0,30}";

    proptest! {
        #[test]
        fn an_accepted_host_reads_back_the_same(host in HOST_LIKE) {
            // Accepted: it reads back from how it is written. Refused: the message lists
            // the forms that are accepted.
            match Endpoint::parse(&host) {
                Ok(endpoint) => {
                    let again = Endpoint::parse(&endpoint.to_string());
                    assert_eq!(again, Ok(endpoint));
                }
                Err(why) => assert!(why.contains(ACCEPTED_FORMS), "{}", why),
            }
        }
    }
}
