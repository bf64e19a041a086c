"""One run of `cargo xtask bench replicas`: N ragd replicas sharing a throwaway Postgres
catalog and an S3 bucket (moto's server on loopback) ingest the corpus; prints one JSON line
with the files, failures, chunks and seconds from the first upload to the last document
finished.

Uploads go round robin over the replicas (one file per request, as a load balancer spreads
clients), all sent before the clock stops; every replica's workers then take documents
from the shared queue. Run by the clients venv (moto, httpx) as root or not: Postgres runs
as the `postgres` user under root.
"""

import argparse
import logging
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import boto3
import httpx
from moto.server import ThreadedMotoServer

KEY = "bench-replicas-key"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pg_bin():
    out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
    if out.returncode == 0 and os.path.exists(os.path.join(out.stdout.strip(), "initdb")):
        return out.stdout.strip()
    versions = sorted(os.listdir("/usr/lib/postgresql"), key=int)
    return f"/usr/lib/postgresql/{versions[-1]}/bin"


def start_postgres(work):
    """initdb + postgres on a free port; returns (process, url)."""
    bin_dir, port = pg_bin(), free_port()
    data = os.path.join(work, "pg")
    os.makedirs(data)
    prefix = []
    if os.geteuid() == 0:
        shutil.chown(work, "postgres", "postgres")
        shutil.chown(data, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    subprocess.run(prefix + [f"{bin_dir}/initdb", "-D", data, "-A", "trust", "-U", "postgres",
                             "-E", "UTF8", "--locale=C", "--no-sync"],
                   check=True, capture_output=True)
    server = subprocess.Popen(
        prefix + [f"{bin_dir}/postgres", "-D", data, "-p", str(port), "-h", "127.0.0.1",
                  "-k", data, "-c", "max_connections=200"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        if subprocess.run([f"{bin_dir}/pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port)]
                          ).returncode == 0:
            break
        time.sleep(0.1)
    subprocess.run([f"{bin_dir}/psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(port), "-U",
                    "postgres", "-c", "CREATE DATABASE ragd"], check=True)
    return server, f"postgres://postgres@127.0.0.1:{port}/ragd"


def start_ragd(args, work, index, env, procs):
    """Starts replica `index` (appended to `procs` at once, so it is stopped whatever
    happens) and waits until it answers `/health`; returns its URL."""
    port = free_port()
    data = os.path.join(work, f"replica-{index}")
    log = open(os.path.join(work, f"replica-{index}.log"), "w")
    proc = subprocess.Popen(
        [args.ragd, "serve", "--port", str(port), "--host", "127.0.0.1", "--data-dir", data],
        env=env, stdout=subprocess.DEVNULL, stderr=log)
    procs.append(proc)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            sys.exit(f"replica {index} exited; see {log.name}")
        time.sleep(0.2)
    sys.exit(f"replica {index} did not answer; see {log.name}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ragd", required=True)
    parser.add_argument("--replicas", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="ragd-bench-replicas-")
    procs = []
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    # moto's request log is noise here.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    try:
        pg, catalog = start_postgres(work)
        procs.append(pg)
        moto.start()
        endpoint = "http://127.0.0.1:%d" % moto.get_host_and_port()[1]
        aws = {"AWS_ENDPOINT": endpoint, "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true",
               "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret"}
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                     aws_access_key_id="bench", aws_secret_access_key="bench-secret"
                     ).create_bucket(Bucket="bench")
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAGD_") or
               k == "RAGD_ASSETS_DIR"}
        env.update(aws)
        env.update({
            "RAGD_CATALOG__URL": catalog,
            "RAGD_VECTOR_STORE__URI": "s3://bench/lance",
            "RAGD_INGEST__UPLOADS_URI": "s3://bench/uploads",
            "RAGD_INGEST__WORKERS": str(args.workers),
            "RAGD_INGEST__CLAIM_POLL_MS": "200",
            "RAGD_EMBEDDING__INTRA_OP_THREADS": str(args.threads),
            "RAGD_EMBEDDING__PRECISION": "int8",
            "RAGD_MODELS__AUTOLOAD": "none",
            "RAGD_HUB__OFFLINE": "true",
            "RAGD_AUTH__KEYS": KEY,
            "RUST_LOG": "warn",
        })
        urls = []
        for index in range(args.replicas):
            urls.append(start_ragd(args, work, index, env, procs))
        client = httpx.Client(headers={"Authorization": f"Bearer {KEY}"}, timeout=120)

        started = time.time()
        for n, path in enumerate(args.files):
            with open(path, "rb") as handle:
                reply = client.post(f"{urls[n % len(urls)]}/api/v1/documents",
                                    files={"files": (os.path.basename(path), handle)})
            if reply.status_code != 202:
                sys.exit(f"upload {path}: {reply.status_code} {reply.text}")
        while True:
            reply = client.get(f"{urls[0]}/api/v1/documents", params={"limit": 500})
            if reply.status_code != 200:
                sys.exit(f"listing documents: {reply.status_code} {reply.text}")
            docs = reply.json()["items"]
            done = [d for d in docs if d["status"] in ("ready", "failed")]
            if len(done) == len(args.files):
                break
            if time.time() - started > 3600:
                sys.exit("not finished after an hour")
            time.sleep(0.2)
        seconds = time.time() - started
        print(json.dumps({
            "replicas": args.replicas,
            "files": len(docs),
            "failed": sum(d["status"] == "failed" for d in docs),
            "chunks": sum(d.get("chunk_count", 0) for d in docs),
            "seconds": seconds,
        }))
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        moto.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
