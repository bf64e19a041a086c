//! A throwaway Postgres server on loopback for tests: a cluster made by `initdb` in a temp
//! dir, started once per test process from Debian's `postgresql` package (`cargo xtask
//! sysdeps` installs it), with a new database for each test.
//!
//! The server runs as a child of a small shell that waits on its standard input: when the
//! test process exits, however it exits, the pipe closes, the server is shut down fast and
//! its directory removed. As root (CI), the cluster belongs to the `postgres` user, since
//! Postgres refuses to run as root.
//!
//! The binaries are found through `RAGD_PG_BIN` when set, else `pg_config --bindir`, else the
//! newest `/usr/lib/postgresql/*/bin`.

// Tests read the same environment as `cargo xtask`, which sets it.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Makes TLS certificates (a CA, a server certificate it signed for `localhost` only, and a
/// second CA that signed nothing), makes the cluster, starts the server with TLS on, prints
/// `ready` once it accepts connections, and stops it when standard input closes. Arguments:
/// bin dir, data dir, port.
const SERVER: &str = r#"
set -e
bin="$1"; dir="$2"; port="$3"
mkdir -p "$dir/tls"
(
    cd "$dir/tls"; umask 077
    for ca in ca other-ca; do
        printf '[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = ragd test %s\n[ext]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n' "$ca" >"$ca.cnf"
        openssl req -x509 -new -config "$ca.cnf" -extensions ext -newkey ec \
            -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$ca.key" -out "$ca.crt" -days 30
    done
    printf '[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = localhost\n' >server.cnf
    printf 'basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\nextendedKeyUsage = serverAuth\nsubjectAltName = DNS:localhost\n' >server.ext
    openssl req -new -config server.cnf -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout server.key -out server.csr
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
        -extfile server.ext -out server.crt
    chmod 644 ca.crt other-ca.crt
) >"$dir/tls.log" 2>&1
"$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1
"$bin/postgres" -D "$dir/data" -p "$port" -h 127.0.0.1 -k "$dir" \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
    -c max_connections=300 -c shared_buffers=64MB \
    -c ssl=on -c ssl_cert_file="$dir/tls/server.crt" -c ssl_key_file="$dir/tls/server.key" \
    >"$dir/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
    if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then break; fi
    sleep 0.1
done
echo ready
cat >/dev/null || true
kill -INT "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
rm -rf "$dir"
"#;

/// The running server of this test process.
struct Server {
    bin: PathBuf,
    port: u16,
    /// The cluster's directory (its TLS files are in `tls/`).
    dir: PathBuf,
    /// Closed only when the process exits, which stops the server.
    _stdin: ChildStdin,
    /// Kept so the server is not reaped as a stray child before the process ends.
    _child: Child,
}

static SERVER_ONCE: OnceLock<Server> = OnceLock::new();
static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// The directory holding `initdb`, `postgres`, `pg_isready` and `psql`.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("RAGD_PG_BIN") {
        return PathBuf::from(dir);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return dir;
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    found.sort_by_key(|bin| {
        bin.parent()
            .and_then(|version| version.file_name())
            .and_then(|name| name.to_str())
            .and_then(|name| name.parse::<u32>().ok())
    });
    found.pop().expect(
        "no Postgres server binaries (initdb): install Debian's postgresql (cargo xtask sysdeps) \
         or set RAGD_PG_BIN",
    )
}

/// Whether this process runs as root (Postgres refuses to).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

fn server() -> &'static Server {
    SERVER_ONCE.get_or_init(|| {
        let bin = bin_dir();
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("ragd-pg-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("the cluster's temp dir is created");
        let root = is_root();
        let mut command = if root {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .expect("chown runs");
            assert!(status.success(), "cannot give {} to the postgres user", dir.display());
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--", "sh", "-c", SERVER, "sh"]);
            command
        } else {
            let mut command = Command::new("sh");
            command.args(["-c", SERVER, "sh"]);
            command
        };
        command.arg(&bin).arg(&dir).arg(port.to_string());
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start Postgres from {}: {err}", bin.display()));
        let stdout = child.stdout.take().expect("the server's stdout is piped");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("the server script prints");
        assert_eq!(
            line.trim(),
            "ready",
            "Postgres did not start; see {}/tls.log, initdb.log and server.log",
            dir.display()
        );
        let stdin = child.stdin.take().expect("the server's stdin is piped");
        let server = Server { bin, port, dir, _stdin: stdin, _child: child };
        wait_until_accepting(&server);
        server
    })
}

/// `pg_isready` may pass a moment before the server takes queries; retry a trivial one.
fn wait_until_accepting(server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ok = psql(server, "postgres", "SELECT 1").is_ok();
        if ok {
            return;
        }
        assert!(Instant::now() < deadline, "Postgres on port {} takes no queries", server.port);
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs one statement through `psql` as the `postgres` user.
fn psql(server: &Server, database: &str, sql: &str) -> Result<(), String> {
    let out = Command::new(server.bin.join("psql"))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "postgres"])
        .args(["-p", &server.port.to_string(), "-d", database, "-c", sql])
        .output()
        .map_err(|err| err.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A new, empty database on the test process's Postgres server.
#[derive(Debug, Clone)]
pub struct PgDatabase {
    /// The database's name.
    pub name: String,
    /// `postgres://postgres@127.0.0.1:PORT/NAME`.
    pub url: String,
}

impl PgDatabase {
    /// Creates a database no other test of this process uses.
    ///
    /// # Panics
    /// When the server cannot be started or refuses the database.
    #[must_use]
    pub fn create() -> Self {
        let server = server();
        let name = format!("ragd_test_{}", DATABASES.fetch_add(1, Ordering::Relaxed));
        psql(server, "postgres", &format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|err| panic!("creating database {name}: {err}"));
        let url = format!("postgres://postgres@127.0.0.1:{}/{name}", server.port);
        Self { name, url }
    }

    /// The server's port on 127.0.0.1.
    #[must_use]
    pub fn port(&self) -> u16 {
        server().port
    }

    /// The PEM certificate of the CA that signed the server's TLS certificate, which names
    /// `localhost` only (so `verify-full` passes for `localhost` and fails for 127.0.0.1).
    #[must_use]
    pub fn ca_cert(&self) -> PathBuf {
        server().dir.join("tls/ca.crt")
    }

    /// The directory of the server's Unix socket (libpq's `host` for a socket).
    #[must_use]
    pub fn socket_dir(&self) -> PathBuf {
        server().dir.clone()
    }

    /// The PEM certificate of a CA that signed nothing the server presents.
    #[must_use]
    pub fn other_ca_cert(&self) -> PathBuf {
        server().dir.join("tls/other-ca.crt")
    }
}
