//! A Unix-socket proxy in front of the Docker Engine, for fault injection a real engine
//! cannot give: cutting every connection (an engine outage) and restoring it, and slipping
//! extra lines into the event stream.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The engine socket the proxy forwards to.
pub fn engine_socket() -> PathBuf {
    match std::env::var("DOCKER_HOST") {
        Ok(host) if host.starts_with("unix://") => PathBuf::from(&host["unix://".len()..]),
        _ => PathBuf::from("/var/run/docker.sock"),
    }
}

#[derive(Default)]
struct Shared {
    /// A hung engine: connections are accepted and requests read, but nothing is answered
    /// until the engine answers again.
    hung: AtomicBool,
    /// Both ends of every open connection, to cut them.
    connections: Mutex<Vec<UnixStream>>,
    /// Lines waiting to be slipped into event streams.
    injections: Mutex<VecDeque<String>>,
}

pub struct EngineProxy {
    path: PathBuf,
    shared: Arc<Shared>,
    accepting: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl EngineProxy {
    /// Starts a proxy listening on `<dir>/docker.sock`.
    pub fn start(dir: &Path) -> EngineProxy {
        let mut proxy = EngineProxy {
            path: dir.join("docker.sock"),
            shared: Arc::default(),
            accepting: None,
        };
        proxy.restore();
        proxy
    }

    /// The `--docker.host` value that reaches the engine through this proxy.
    pub fn host(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    /// An outage: stop accepting, remove the socket, and close every open connection.
    pub fn cut(&mut self) {
        if let Some((stop, thread)) = self.accepting.take() {
            stop.store(true, Ordering::SeqCst);
            thread.join().unwrap();
        }
        let _ = std::fs::remove_file(&self.path);
        for stream in self.shared.connections.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// The engine is back: listen again on the same path.
    pub fn restore(&mut self) {
        assert!(self.accepting.is_none(), "the proxy is already accepting");
        let _ = std::fs::remove_file(&self.path);
        let listener = UnixListener::bind(&self.path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let shared = Arc::clone(&self.shared);
        let thread = std::thread::spawn(move || {
            while !thread_stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let shared = Arc::clone(&shared);
                        std::thread::spawn(move || forward(client, shared));
                    }
                    Err(error) if error.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(error) => panic!("proxy accept: {error}"),
                }
            }
        });
        self.accepting = Some((stop, thread));
    }

    /// Slips `line` (one JSON object) into the event stream at the next chunk boundary.
    pub fn inject_event_line(&self, line: &str) {
        self.shared
            .injections
            .lock()
            .unwrap()
            .push_back(line.to_owned());
    }

    /// The engine hangs: from now on nothing reaches the client, on connections open or new.
    pub fn hang(&self) {
        self.shared.hung.store(true, Ordering::SeqCst);
    }

    /// The hung engine answers again, held requests included.
    pub fn answer(&self) {
        self.shared.hung.store(false, Ordering::SeqCst);
    }

    pub fn pending_injections(&self) -> usize {
        self.shared.injections.lock().unwrap().len()
    }
}

impl Drop for EngineProxy {
    fn drop(&mut self) {
        self.cut();
    }
}

/// Waits while the engine hangs.
fn wait_while_hung(shared: &Shared) {
    while shared.hung.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn forward(mut client: UnixStream, shared: Arc<Shared>) {
    wait_while_hung(&shared);
    let Ok(mut engine) = UnixStream::connect(engine_socket()) else {
        return;
    };
    {
        let mut connections = shared.connections.lock().unwrap();
        connections.push(client.try_clone().unwrap());
        connections.push(engine.try_clone().unwrap());
    }
    // The first bytes carry the request line, which says whether this is the event stream.
    let mut first = vec![0u8; 64 * 1024];
    let n = match client.read(&mut first) {
        Ok(0) | Err(_) => return,
        Ok(n) => n,
    };
    let request = String::from_utf8_lossy(&first[..n]).into_owned();
    let is_events = request
        .lines()
        .next()
        .is_some_and(|line| line.starts_with("GET ") && line.contains("/events"));
    if engine.write_all(&first[..n]).is_err() {
        return;
    }
    let mut upstream_client = client.try_clone().unwrap();
    let mut upstream_engine = engine.try_clone().unwrap();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut upstream_client, &mut upstream_engine);
        let _ = upstream_engine.shutdown(Shutdown::Write);
    });
    if is_events {
        forward_event_stream(engine, client, &shared);
    } else {
        // Each piece of the answer waits while the engine hangs.
        let mut buffer = [0u8; 16 * 1024];
        while let Ok(n) = engine.read(&mut buffer) {
            wait_while_hung(&shared);
            if n == 0 || client.write_all(&buffer[..n]).is_err() {
                break;
            }
        }
        let _ = client.shutdown(Shutdown::Write);
    }
}

/// Copies a chunked event stream chunk by chunk, writing injected lines as extra chunks
/// whenever the stream is between chunks.
fn forward_event_stream(mut engine: UnixStream, mut client: UnixStream, shared: &Shared) {
    engine
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut pending: Vec<u8> = Vec::new();
    let mut head_done = false;
    let mut chunked = false;
    let mut buffer = [0u8; 16 * 1024];
    loop {
        // Forward whatever complete pieces the buffer holds.
        loop {
            if !head_done {
                let Some(end) = find(&pending, b"\r\n\r\n") else {
                    break;
                };
                let head: Vec<u8> = pending.drain(..end + 4).collect();
                chunked = String::from_utf8_lossy(&head)
                    .to_ascii_lowercase()
                    .contains("transfer-encoding: chunked");
                if client.write_all(&head).is_err() {
                    return;
                }
                head_done = true;
                continue;
            }
            if !chunked {
                if client.write_all(&pending).is_err() {
                    return;
                }
                pending.clear();
                break;
            }
            let Some(line_end) = find(&pending, b"\r\n") else {
                break;
            };
            let size_text = String::from_utf8_lossy(&pending[..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
                .unwrap_or_else(|_| panic!("bad chunk size {size_text:?}"));
            let total = line_end + 2 + size + 2;
            if pending.len() < total {
                break;
            }
            let chunk: Vec<u8> = pending.drain(..total).collect();
            if client.write_all(&chunk).is_err() {
                return;
            }
            if size == 0 {
                return;
            }
        }
        if head_done && chunked && pending.is_empty() {
            let lines: Vec<String> = shared.injections.lock().unwrap().drain(..).collect();
            for line in lines {
                let data = format!("{line}\n");
                let chunk = format!("{:x}\r\n{data}\r\n", data.len());
                if client.write_all(chunk.as_bytes()).is_err() {
                    return;
                }
            }
        }
        wait_while_hung(shared);
        match engine.read(&mut buffer) {
            Ok(0) => {
                let _ = client.shutdown(Shutdown::Both);
                return;
            }
            Ok(n) => pending.extend_from_slice(&buffer[..n]),
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => {
                let _ = client.shutdown(Shutdown::Both);
                return;
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}
