//! `cargo xtask bench search`: vector search latency and recall of ragd against chromadb,
//! against Lance's own release build on ragd's index, and of ragd's store on S3 against
//! the same store on a local directory.
//!
//! `xtask/bench/search.py data` writes deterministic, clustered 384-dimension unit vectors,
//! fresh query vectors and the exact top 10 of every query (numpy brute force) to files all
//! contenders read. For each table size:
//!
//! - `ragd`: `LanceStore` (example `bench_search` of `ragd-vector-store`) loads the rows
//!   through `VectorStore::upsert` into a local directory, answers the queries by exact flat
//!   scan, then builds its IVF_HNSW_SQ index the way the product does and answers them
//!   again through it;
//! - `pylance`: the same queries on the table and index ragd just built, through the
//!   `pylance` wheel of the Lance version ragd links (Lance's own release build), with
//!   ragd's query parameters: what ragd's layers cost on top of Lance itself;
//! - `ragd on S3`: the same `bench_search` run, queries and index (`--ef-sweep` aside),
//!   with `--db s3://bench/rows-N` (a fresh prefix per size) on moto's S3 server
//!   (`moto[server]` of the bench venv): one server per run on a free loopback port, its
//!   bucket `bench` created by a plain HTTP `PUT`, stopped when the run ends or fails. The
//!   endpoint (`AWS_ENDPOINT`, `AWS_ALLOW_HTTP=true`), a region and moto's accept-anything
//!   keys reach `bench_search` as `AWS_*` variables, set on that command only (no other
//!   `AWS_*` variable of this process reaches it). With no network in between, it measures
//!   what the object-store protocol costs (each read an HTTP request to a Python server
//!   instead of a file read); a real bucket adds a network round trip to each request.
//!   `--no-s3` leaves it out;
//! - `chromadb`: a persistent collection (HNSW, cosine) with the same rows and queries.
//!
//! The contenders take turns going first from one size to the next. Reported: per-query
//! latency p50 and p99 (sequential queries, after a warm-up), recall@10 against the exact
//! answers, load and index build times, every latency as a ratio of chromadb's, and ragd's
//! on S3 as a ratio of ragd's on the local directory.

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{Setup, json_line, number};
use crate::Result;

const USAGE: &str = "usage: cargo xtask bench search [--sizes N,N...] [--queries Q] \
                     [--flat-queries F] [--ef-sweep EF,EF...] [--ann-max-rows N] [--no-s3]";

/// The benchmark's options.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Options {
    sizes: Vec<usize>,
    /// Queries for the ANN passes and chromadb.
    queries: usize,
    /// Queries for ragd's exact flat scan (its recall is 1, so fewer are enough).
    flat_queries: usize,
    /// More `ef` values ragd's index is searched with (recall against latency).
    ef_sweep: Vec<usize>,
    /// Tables larger than this skip ragd's index (72 s for 100 000 rows here with
    /// dependencies at opt-level 1; 11 minutes for 10 000 rows at opt-level 0).
    ann_max_rows: usize,
    /// Whether ragd runs on S3 (moto) too; `--no-s3` turns it off.
    s3: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            sizes: vec![10_000, 100_000],
            queries: 200,
            flat_queries: 50,
            ef_sweep: Vec::new(),
            ann_max_rows: 100_000,
            s3: true,
        }
    }
}

fn parse(args: &[String]) -> Result<Options> {
    let mut options = Options::default();
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        if flag == "--no-s3" {
            options.s3 = false;
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--sizes" => {
                options.sizes = value
                    .split(',')
                    .map(|size| size.trim().parse().ok().filter(|n| *n >= 100))
                    .collect::<Option<Vec<usize>>>()
                    .ok_or_else(|| format!("--sizes wants numbers of at least 100\n{USAGE}"))?;
            }
            "--ef-sweep" => {
                options.ef_sweep = value
                    .split(',')
                    .map(|ef| ef.trim().parse().ok().filter(|n| *n > 0))
                    .collect::<Option<Vec<usize>>>()
                    .ok_or_else(|| format!("--ef-sweep wants positive numbers\n{USAGE}"))?;
            }
            "--queries" | "--flat-queries" | "--ann-max-rows" => {
                let number = value
                    .parse()
                    .ok()
                    .filter(|q| *q > 0)
                    .ok_or_else(|| format!("{flag} needs a positive number\n{USAGE}"))?;
                match flag.as_str() {
                    "--queries" => options.queries = number,
                    "--flat-queries" => options.flat_queries = number,
                    _ => options.ann_max_rows = number,
                }
            }
            _ => return Err(format!("unknown option {flag:?}\n{USAGE}")),
        }
    }
    options.sizes.sort_unstable();
    options.sizes.dedup();
    Ok(options)
}

/// The bucket on moto's server; each table size writes under its own prefix in it.
const BUCKET: &str = "bench";

/// The region of the S3 contender's store.
const S3_REGION: &str = "us-east-1";
/// The S3 contender's access key id and secret: moto accepts any.
const S3_KEY: &str = "testing";

/// Run by the bench venv's Python: starts moto's threaded S3 server on a free loopback port
/// (werkzeug binds port 0 and reports the port it got), prints that port and moto's version,
/// and serves until its standard input closes, so it also stops when xtask dies.
const MOTO: &str = "
import logging, sys
import moto
from moto.server import ThreadedMotoServer
# A log line per request would cost the server time and fill the log.
logging.getLogger('werkzeug').setLevel(logging.ERROR)
server = ThreadedMotoServer(ip_address='127.0.0.1', port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], moto.__version__, flush=True)
sys.stdin.read()
";

/// A child process that is killed and reaped when dropped, however the run ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// moto's S3 server on loopback with the bucket [`BUCKET`]; dropping it stops the server.
struct Moto {
    /// `http://127.0.0.1:PORT`.
    endpoint: String,
    /// moto's version, for the header.
    version: String,
    _server: KillOnDrop,
}

impl Moto {
    /// Starts the server with the bench venv's Python and creates the bucket. Its log (errors
    /// only) goes to `moto.log` in the benchmark's scratch directory.
    fn start(setup: &Setup) -> Result<Self> {
        let log = setup.work.join("moto.log");
        let log_file = std::fs::File::create(&log)
            .map_err(|err| format!("cannot create {}: {err}", log.display()))?;
        let mut cmd = Command::new(&setup.python);
        crate::clean_cargo_env(&mut cmd);
        cmd.current_dir(crate::workspace_root())
            .args(["-c", MOTO])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file);
        eprintln!("xtask: bench search: starting moto's S3 server (log: {})", log.display());
        let mut server =
            KillOnDrop(cmd.spawn().map_err(|err| format!("cannot run {cmd:?}: {err}"))?);
        let mut line = String::new();
        if let Some(stdout) = server.0.stdout.as_mut() {
            BufReader::new(stdout)
                .read_line(&mut line)
                .map_err(|err| format!("reading moto's port: {err}"))?;
        }
        let mut words = line.split_whitespace();
        let port: u16 = words.next().and_then(|port| port.parse().ok()).ok_or_else(|| {
            format!(
                "moto's S3 server did not start (printed {line:?}; is moto[server] in the \
                 bench venv?); see {}",
                log.display()
            )
        })?;
        let version = words.next().unwrap_or("unknown").to_owned();
        create_bucket(&format!("127.0.0.1:{port}"))?;
        eprintln!("xtask: bench search: moto {version} serves s3://{BUCKET} on port {port}");
        Ok(Self { endpoint: format!("http://127.0.0.1:{port}"), version, _server: server })
    }

    /// Points `cmd`'s object store at this server: the endpoint over plain HTTP, a region and
    /// moto's accept-anything keys. No other `AWS_*` variable of this process reaches it.
    fn configure(&self, cmd: &mut Command) {
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("AWS_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("AWS_ENDPOINT", &self.endpoint)
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_REGION", S3_REGION)
            .env("AWS_ACCESS_KEY_ID", S3_KEY)
            .env("AWS_SECRET_ACCESS_KEY", S3_KEY);
    }

    /// Stops the server (dropping the rest of `self` kills it); returns moto's version.
    fn stop(self) -> String {
        self.version
    }
}

/// Creates [`BUCKET`] on the S3 server at `address` (`127.0.0.1:PORT`): one plain HTTP
/// `PUT`, as the test suite's `S3Bucket` does, so xtask needs no HTTP client.
fn create_bucket(address: &str) -> Result<()> {
    let fail = |err: std::io::Error| format!("creating bucket {BUCKET} on {address}: {err}");
    let mut stream = TcpStream::connect(address).map_err(fail)?;
    stream.set_read_timeout(Some(Duration::from_secs(60))).map_err(fail)?;
    write!(
        stream,
        "PUT /{BUCKET} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .map_err(fail)?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).map_err(fail)?;
    if reply.split_whitespace().nth(1) == Some("200") {
        Ok(())
    } else {
        Err(format!("moto refused bucket {BUCKET} on {address}: {reply}"))
    }
}

/// The contenders of one table size, which take turns going first.
#[derive(Debug, Clone, Copy)]
enum Contender {
    /// ragd on a local directory, then pylance on the index it left.
    Ragd,
    /// ragd on moto's S3 server.
    RagdS3,
    Chroma,
}

/// The numbers of the contenders at one table size.
struct SizeResult {
    n: usize,
    ragd: serde_json::Value,
    chroma: serde_json::Value,
    /// Lance's own build on ragd's index; none when ragd built no index.
    pylance: Option<serde_json::Value>,
    /// ragd on moto's S3 server; none with `--no-s3`.
    s3: Option<serde_json::Value>,
}

pub(super) fn run(args: &[String]) -> Result<()> {
    let options = parse(args)?;
    let setup = Setup::new("search")?;
    let data = setup.work.join("data");
    let sizes: Vec<String> = options.sizes.iter().map(ToString::to_string).collect();
    let mut generate = setup.script("search.py");
    generate
        .args(["data", "--sizes", &sizes.join(","), "--queries", &options.queries.to_string()])
        .arg("--out")
        .arg(&data);
    crate::run(generate)?;
    // One server for the whole run, stopped when `moto` is dropped (on an error too).
    let moto = if options.s3 { Some(Moto::start(&setup)?) } else { None };

    let load_before = super::load_average();
    let mut results = Vec::new();
    for (position, &n) in options.sizes.iter().enumerate() {
        let lance_dir = setup.work.join("lance");
        let indexed = n <= options.ann_max_rows;
        // ragd's `bench_search` with what its local and its S3 run share.
        let bench_search = || -> Result<Command> {
            let mut cmd = Setup::example(&setup.out, "bench_search")?;
            cmd.arg("--data").arg(&data).args(["--n", &n.to_string()]);
            cmd.args(["--queries", &options.queries.to_string()]);
            cmd.args(["--flat-queries", &options.flat_queries.to_string()]);
            if !indexed {
                cmd.arg("--skip-ann");
            }
            Ok(cmd)
        };
        // ragd, then Lance's own build on the index ragd left behind.
        let ragd = || -> Result<(serde_json::Value, Option<serde_json::Value>)> {
            let mut cmd = bench_search()?;
            if !options.ef_sweep.is_empty() {
                let sweep: Vec<String> = options.ef_sweep.iter().map(ToString::to_string).collect();
                cmd.args(["--ef-sweep", &sweep.join(",")]);
            }
            cmd.arg("--db").arg(&lance_dir).arg("--keep-db");
            let ragd = json_line(cmd)?;
            let pylance = if indexed {
                let mut cmd = setup.script("search.py");
                cmd.arg("lance").arg("--dir").arg(&data).args(["--n", &n.to_string()]);
                cmd.args(["--queries", &options.queries.to_string()]);
                cmd.args(["--ef", &number(&ragd, "ef")?.to_string()]);
                cmd.arg("--table").arg(lance_dir.join("chunks.lance"));
                Some(json_line(cmd)?)
            } else {
                None
            };
            let _ = std::fs::remove_dir_all(&lance_dir);
            Ok((ragd, pylance))
        };
        // ragd again, on S3 under a prefix no other size writes to.
        let ragd_s3 = |moto: &Moto| -> Result<serde_json::Value> {
            let mut cmd = bench_search()?;
            cmd.arg("--db").arg(format!("s3://{BUCKET}/rows-{n}-{position}"));
            moto.configure(&mut cmd);
            json_line(cmd)
        };
        let chroma = || -> Result<serde_json::Value> {
            let mut cmd = setup.script("search.py");
            cmd.arg("chroma").arg("--dir").arg(&data).args(["--n", &n.to_string()]);
            cmd.args(["--queries", &options.queries.to_string()]);
            cmd.arg("--db").arg(setup.work.join("chroma"));
            json_line(cmd)
        };
        // Rotate which contender goes first from one size to the next.
        let mut order = vec![Contender::Ragd, Contender::Chroma];
        if moto.is_some() {
            order.insert(1, Contender::RagdS3);
        }
        let first = position % order.len();
        order.rotate_left(first);
        let (mut local, mut s3, mut peer) = (None, None, None);
        for contender in order {
            match contender {
                Contender::Ragd => local = Some(ragd()?),
                Contender::RagdS3 => s3 = moto.as_ref().map(&ragd_s3).transpose()?,
                Contender::Chroma => peer = Some(chroma()?),
            }
        }
        let ((ragd, pylance), chroma) = local.zip(peer).ok_or("a contender did not run")?;
        eprintln!(
            "xtask: bench search: n={n}: ragd {ragd}; ragd on S3 {s3:?}; chromadb {chroma}; \
             pylance {pylance:?}"
        );
        results.push(SizeResult { n, ragd, chroma, pylance, s3 });
    }
    let load_after = super::load_average();
    let moto_version = moto.map(Moto::stop);

    let command = format!("cargo xtask bench search {}", args.join(" "));
    let mut out = super::header("Vector search", command.trim());
    let _ = writeln!(
        out,
        "- input: clustered unit vectors, 384 dimensions (about 100 rows per cluster, \
         within-cluster cosine about 0.4), {} fresh query vectors from the same clusters, \
         top 10, cosine; exact answers by numpy brute force; queries one at a time after 5 \
         warm-up queries; ragd's flat scan timed on the first {} queries; ragd's index built \
         for tables of up to {} rows",
        options.queries, options.flat_queries, options.ann_max_rows
    );
    let _ = writeln!(
        out,
        "- ragd: `LanceStore` through `VectorStore::upsert` / `search` in one process (rows \
         loaded in upserts of 5000); `flat` is its exact scan before the index exists, `ann` \
         the IVF_HNSW_SQ index it builds once a table passes `index_threshold_rows` (refine \
         factor 1, `ef` {}). pylance: the same table and index, queried through Lance's own \
         release build (the `pylance` wheel of the Lance version ragd links) with ragd's \
         query (cosine, same `ef`, refine factor 1, same columns). chromadb: \
         `PersistentClient`, `hnsw:space = cosine`, default HNSW parameters, queried through \
         its Python client",
        results
            .iter()
            .find_map(|r| number(&r.ragd, "ef").ok())
            .map_or_else(|| "unknown".to_owned(), |ef| ef.to_string())
    );
    if let Some(moto) = &moto_version {
        let _ = writeln!(
            out,
            "- ragd on S3: the same `bench_search` run with `--db s3://{BUCKET}/rows-N` (a fresh \
             prefix per size) against moto {moto}'s S3 server on loopback (Python, objects \
             held by the server process: in memory, over about 5 MB in temporary files), \
             `AWS_ENDPOINT=http://127.0.0.1:PORT AWS_ALLOW_HTTP=true`. No network: this \
             measures what the object-store protocol costs (each read an HTTP request to a \
             local server instead of a file read); a real bucket adds a network round trip \
             to every request"
        );
    }
    let version = results
        .first()
        .and_then(|r| r.chroma.get("version"))
        .and_then(serde_json::Value::as_str)
        .unwrap_or("unknown");
    let _ = writeln!(out, "- chromadb {version}");
    let _ = writeln!(out, "- 1-minute load average before / after: {load_before} / {load_after}");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| rows | contender | p50 ms | p99 ms | recall@10 | load s | index build s | p50 ÷ chromadb p50 | p99 ÷ chromadb p99 |"
    );
    let _ = writeln!(out, "|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for result in &results {
        let chroma_p50 = number(&result.chroma, "p50_ms")?;
        let chroma_p99 = number(&result.chroma, "p99_ms")?;
        ragd_rows(&mut out, result.n, &result.ragd, "", (chroma_p50, chroma_p99))?;
        if let Some(s3) = &result.s3 {
            ragd_rows(&mut out, result.n, s3, " on S3 (moto, loopback)", (chroma_p50, chroma_p99))?;
        }
        if let Some(pylance) = &result.pylance {
            let p50 = number(pylance, "p50_ms")?;
            let p99 = number(pylance, "p99_ms")?;
            let _ = writeln!(
                out,
                "| {} | pylance on ragd's index | {p50:.2} | {p99:.2} | {:.3} | – | – | {:.2} | {:.2} |",
                result.n,
                number(pylance, "recall")?,
                p50 / chroma_p50,
                p99 / chroma_p99
            );
        }
        let _ = writeln!(
            out,
            "| {} | chromadb | {chroma_p50:.2} | {chroma_p99:.2} | {:.3} | {:.1} | (during load) | 1.00 | 1.00 |",
            result.n,
            number(&result.chroma, "recall")?,
            number(&result.chroma, "load_s")?
        );
    }
    let _ = writeln!(out);
    for result in &results {
        if let (Some(pylance), Ok(ragd)) = (&result.pylance, number(&result.ragd, "ann.p50_ms")) {
            let _ = writeln!(
                out,
                "- {} rows: ragd's indexed query p50 is {:.2}x Lance's own build on the same index",
                result.n,
                ragd / number(pylance, "p50_ms")?
            );
        }
    }
    for result in &results {
        let Some(s3) = &result.s3 else { continue };
        for (label, pass) in [("indexed", "ann"), ("exact flat", "flat")] {
            let (Ok(local), Ok(remote)) = (
                number(&result.ragd, &format!("{pass}.p50_ms")),
                number(s3, &format!("{pass}.p50_ms")),
            ) else {
                continue;
            };
            let _ = writeln!(
                out,
                "- {} rows: ragd's {label} query on S3 (moto) is {:.2}x its time on the local \
                 directory at p50, {:.2}x at p99",
                result.n,
                remote / local,
                number(s3, &format!("{pass}.p99_ms"))?
                    / number(&result.ragd, &format!("{pass}.p99_ms"))?
            );
        }
    }
    let sweeps: Vec<&SizeResult> = results
        .iter()
        .filter(|r| r.ragd["sweep"].as_array().is_some_and(|s| !s.is_empty()))
        .collect();
    if !sweeps.is_empty() {
        let _ = writeln!(out, "\nragd's index searched with other `ef` values (`--ef-sweep`):\n");
        let _ = writeln!(out, "| rows | ef | p50 ms | p99 ms | recall@10 |");
        let _ = writeln!(out, "|---:|---:|---:|---:|---:|");
        for result in sweeps {
            for entry in result.ragd["sweep"].as_array().into_iter().flatten() {
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.2} | {:.2} | {:.3} |",
                    result.n,
                    number(entry, "ef")?,
                    number(entry, "pass.p50_ms")?,
                    number(entry, "pass.p99_ms")?,
                    number(entry, "pass.recall")?
                );
            }
        }
    }
    print!("{out}");
    super::append(&out)
}

/// The table rows of one `bench_search` result: its index pass and its flat scan, labelled
/// `ragd ann{store}` and `ragd flat (exact){store}`, with their ratios to chromadb's
/// `(p50, p99)`.
fn ragd_rows(
    out: &mut String,
    n: usize,
    ragd: &serde_json::Value,
    store: &str,
    (chroma_p50, chroma_p99): (f64, f64),
) -> Result<()> {
    let load = number(ragd, "load_s")?;
    let index = number(ragd, "index_s").ok();
    for (label, pass) in [("ragd ann", "ann"), ("ragd flat (exact)", "flat")] {
        let build = match (pass, index) {
            ("ann", Some(seconds)) => format!("{seconds:.1}"),
            _ => "–".to_owned(),
        };
        let Ok(p50) = number(ragd, &format!("{pass}.p50_ms")) else {
            let _ = writeln!(
                out,
                "| {n} | {label}{store} | not run (larger than `--ann-max-rows`) | | | {load:.1} \
                 | – | | |"
            );
            continue;
        };
        let p99 = number(ragd, &format!("{pass}.p99_ms"))?;
        let recall = number(ragd, &format!("{pass}.recall"))?;
        let _ = writeln!(
            out,
            "| {n} | {label}{store} | {p50:.2} | {p99:.2} | {recall:.3} | {load:.1} | {build} | {:.2} | {:.2} |",
            p50 / chroma_p50,
            p99 / chroma_p99
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::args;
    use super::*;

    #[test]
    fn options_default_and_override() {
        assert_eq!(parse(&[]).unwrap(), Options::default());
        let options = parse(&args(&["--sizes", "2000,1000,2000", "--queries", "50"])).unwrap();
        assert_eq!(options.sizes, vec![1000, 2000]);
        assert_eq!(options.queries, 50);
        let options = parse(&args(&["--ef-sweep", "15,100"])).unwrap();
        assert_eq!(options.ef_sweep, vec![15, 100]);
        assert!(parse(&args(&["--ef-sweep", "15,0"])).is_err());
        let options = parse(&args(&["--flat-queries", "7", "--ann-max-rows", "100000"])).unwrap();
        assert_eq!((options.flat_queries, options.ann_max_rows), (7, 100_000));
        assert!(parse(&args(&["--sizes", "10"])).is_err());
        assert!(parse(&args(&["--queries", "0"])).is_err());
        assert!(parse(&args(&["--queries"])).is_err());
    }

    #[test]
    fn no_s3_leaves_out_the_s3_contender() {
        assert!(Options::default().s3);
        let options = parse(&args(&["--no-s3", "--queries", "50"])).unwrap();
        assert!(!options.s3);
        assert_eq!(options.queries, 50);
        assert!(!parse(&args(&["--sizes", "1000", "--no-s3"])).unwrap().s3);
        // A flag that wants a value does not take `--no-s3` as one.
        assert!(parse(&args(&["--queries", "--no-s3"])).is_err());
        assert!(parse(&args(&["--no-s3", "1"])).is_err());
    }
}
