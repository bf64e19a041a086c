//! An S3-compatible object store on loopback for tests: moto's server (`moto[server]`,
//! pinned in `bins/ragd/tests/clients/requirements.txt`), run by the interpreter that
//! `XTASK_CLIENTS_PYTHON` names (`cargo xtask test` sets it), once per test process, with a
//! new bucket for each test.
//!
//! moto keeps every object in memory and honours `If-None-Match: *` on uploads, the
//! conditional put LanceDB commits with, so concurrent writers are tested for real.

// Tests read the same environment as `cargo xtask`, which sets it.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Starts moto's threaded server on a free loopback port, prints the port, and serves until
/// its standard input closes: when the test process exits, however it exits.
const SERVER: &str = "
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address='127.0.0.1', port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
";

/// The region every test bucket is in.
pub const S3_REGION: &str = "us-east-1";

/// The running server of this test process.
struct Server {
    /// `http://127.0.0.1:PORT`.
    endpoint: String,
    /// Closed only when the process exits, which stops the server.
    _stdin: ChildStdin,
    /// Kept so the server is not reaped as a stray child before the process ends.
    _child: Child,
}

static SERVER_ONCE: OnceLock<Server> = OnceLock::new();
static BUCKETS: AtomicUsize = AtomicUsize::new(0);

fn server() -> &'static Server {
    SERVER_ONCE.get_or_init(|| {
        let python = std::env::var_os("XTASK_CLIENTS_PYTHON").expect(
            "XTASK_CLIENTS_PYTHON names the Python with moto[server]: run `cargo xtask test`",
        );
        let mut child = Command::new(&python)
            .args(["-c", SERVER])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start moto with {}: {err}", python.display()));
        let stdout = child.stdout.take().expect("moto's stdout is piped");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("moto prints its port");
        let port: u16 = line.trim().parse().unwrap_or_else(|_| {
            panic!("moto did not start (is moto[server] installed?): printed {line:?}")
        });
        let stdin = child.stdin.take().expect("moto's stdin is piped");
        Server { endpoint: format!("http://127.0.0.1:{port}"), _stdin: stdin, _child: child }
    })
}

/// A new, empty bucket on the test process's S3 server.
#[derive(Debug, Clone)]
pub struct S3Bucket {
    /// The bucket's name.
    pub name: String,
    /// The server's `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl S3Bucket {
    /// Creates a bucket no other test of this process uses.
    ///
    /// # Panics
    /// When the server cannot be started or refuses the bucket.
    #[must_use]
    pub fn create() -> Self {
        let server = server();
        let name =
            format!("ragd-test-{}-{}", std::process::id(), BUCKETS.fetch_add(1, Ordering::Relaxed));
        let address = server.endpoint.trim_start_matches("http://");
        let mut stream = TcpStream::connect(address).expect("moto accepts connections");
        write!(
            stream,
            "PUT /{name} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .expect("the bucket request is sent");
        let mut reply = String::new();
        stream.read_to_string(&mut reply).expect("moto answers");
        assert!(reply.starts_with("HTTP/1.1 200"), "creating bucket {name}: {reply}");
        Self { name, endpoint: server.endpoint.clone() }
    }

    /// `s3://BUCKET/PREFIX`.
    #[must_use]
    pub fn uri(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.name)
    }

    /// LanceDB storage options that reach this bucket: the endpoint over plain HTTP, the
    /// region and moto's accepted-anything keys.
    #[must_use]
    pub fn storage_options(&self) -> BTreeMap<String, String> {
        [
            ("aws_endpoint", self.endpoint.as_str()),
            ("aws_region", S3_REGION),
            ("aws_allow_http", "true"),
            ("aws_access_key_id", "ragd-test"),
            ("aws_secret_access_key", "ragd-test-secret"),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
    }

    /// The same settings as the environment variables LanceDB reads (`AWS_ENDPOINT`, ...),
    /// for a `ragd` process the test starts.
    #[must_use]
    pub fn env(&self) -> Vec<(String, String)> {
        self.storage_options()
            .into_iter()
            .map(|(key, value)| (key.to_ascii_uppercase(), value))
            .collect()
    }
}
