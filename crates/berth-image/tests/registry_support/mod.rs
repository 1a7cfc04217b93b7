//! A real registry (Debian's `docker-registry`) started on 127.0.0.1 with its own storage and
//! config, and a tiny scripted HTTP server for what a registry cannot be made to do.
#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// Why the registry tests cannot run here, if they cannot.
pub fn skip_reason() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root".into());
    }
    if !Path::new(REGISTRY_BIN).exists() {
        return Some(format!("{REGISTRY_BIN} missing (apt-get install docker-registry)"));
    }
    None
}

/// Prints why a test is skipped and returns true when it must be.
pub fn skip(test: &str) -> bool {
    match skip_reason() {
        Some(reason) => {
            eprintln!("skipping {test}: {reason}");
            true
        }
        None => false,
    }
}

/// How the registry authenticates.
pub enum Auth {
    None,
    /// htpasswd with one user (the bcrypt line is made by `htpasswd -B`).
    Basic {
        user: String,
        password: String,
    },
    /// Bearer tokens from `realm`, signed by the key of `cert` (PEM).
    Token {
        realm: String,
        service: String,
        issuer: String,
        cert: PathBuf,
    },
}

/// A running `docker-registry`, killed (by pid) and its storage removed on drop.
pub struct Registry {
    /// `127.0.0.1:<port>`.
    pub addr: String,
    child: Child,
    dir: tempfile::TempDir,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Registry {
    pub fn start(auth: Auth) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().join("storage");
        fs::create_dir(&storage).unwrap();
        let auth_yaml = match &auth {
            Auth::None => String::new(),
            Auth::Basic { user, password } => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", user, password])
                    .output()
                    .expect("htpasswd (apache2-utils)");
                assert!(out.status.success(), "htpasswd: {}", String::from_utf8_lossy(&out.stderr));
                let path = dir.path().join("htpasswd");
                fs::write(&path, String::from_utf8(out.stdout).unwrap().trim()).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                    path.display()
                )
            }
            Auth::Token {
                realm,
                service,
                issuer,
                cert,
            } => format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
                cert.display()
            ),
        };
        let mut last_log = String::new();
        // The port is free when picked but may be taken before the registry binds it: retry.
        for _ in 0..5 {
            let addr = format!("127.0.0.1:{}", free_port());
            let config = dir.path().join("config.yml");
            fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n  secret: berth-test-secret\n{auth_yaml}",
                    storage.display()
                ),
            )
            .unwrap();
            let log_path = dir.path().join("registry.log");
            let log = fs::File::create(&log_path).unwrap();
            let mut child = Command::new(REGISTRY_BIN)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start docker-registry");
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                // Ours that listens (another test's registry may have won the port).
                if TcpStream::connect(&addr).is_ok() && listens_on(child.id(), &addr) {
                    return Registry { addr, child, dir };
                }
                if let Some(status) = child.try_wait().unwrap() {
                    last_log = format!("{status}: {}", fs::read_to_string(&log_path).unwrap_or_default());
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "docker-registry did not listen on {addr}: {}",
                        fs::read_to_string(&log_path).unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("docker-registry did not start: {last_log}");
    }

    /// Where the registry keeps the bytes of blob `hex` (manifests included).
    pub fn blob_data(&self, hex: &str) -> PathBuf {
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

/// Whether process `pid` holds the socket listening on `addr` (127.0.0.1:PORT), by the
/// socket's inode in /proc/net/tcp and the process's descriptors.
fn listens_on(pid: u32, addr: &str) -> bool {
    let port = addr.rsplit(':').next().and_then(|p| p.parse::<u16>().ok()).unwrap_or(0);
    // The address as the kernel prints it: its network-order bytes read as a native u32.
    let local = format!("{:08X}:{port:04X}", u32::from_ne_bytes([127, 0, 0, 1]));
    let table = fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let inode = table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        // Columns: sl, local, remote, state (0A: listening), …, inode (the tenth).
        (f.len() > 9 && f[1] == local && f[3] == "0A").then(|| f[9].to_owned())
    });
    let Some(inode) = inode else { return false };
    let socket = format!("socket:[{inode}]");
    fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|fd| fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy() == socket))
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A request the fake server received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// What the fake server answers.
#[derive(Debug, Clone, Default)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Send only this many bytes of the body (with the full Content-Length), then close.
    pub cut_after: Option<usize>,
}

impl Response {
    pub fn new(status: u16) -> Response {
        Response {
            status,
            ..Response::default()
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Response {
        self.body = body.into();
        self
    }
}

type Handler = dyn Fn(&Request) -> Response + Send + Sync;

/// A tiny HTTP/1.1 server on 127.0.0.1 answering with a closure; one connection per request.
pub struct FakeServer {
    pub addr: String,
    pub requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeServer {
    pub fn start(handler: impl Fn(&Request) -> Response + Send + Sync + 'static) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let thread = {
            let requests = requests.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let requests = requests.clone();
                    let handler = handler.clone();
                    std::thread::spawn(move || serve(stream, &*handler, &requests));
                }
            })
        };
        FakeServer {
            addr,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(stream: TcpStream, handler: &Handler, requests: &Mutex<Vec<Request>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("").to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    let _ = reader.read_exact(&mut body);
    let request = Request {
        method,
        target,
        headers,
        body,
    };
    let response = handler(&request);
    requests.lock().unwrap().push(request);
    let mut out = stream;
    let mut head = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", response.status);
    if !response
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        head.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
    }
    for (k, v) in &response.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = out.write_all(head.as_bytes());
    let body = match response.cut_after {
        Some(n) => &response.body[..n.min(response.body.len())],
        None => &response.body[..],
    };
    let _ = out.write_all(body);
    let _ = out.flush();
    let _ = out.shutdown(std::net::Shutdown::Both);
}
