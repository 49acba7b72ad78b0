"""Load test of the personalization service on loopback: concurrent clients scoring responses.

    python benchmarks/service_load.py [--clients 50] [--requests 10] [--model-dir RUN]

Starts `plusrl serve` on a free port with a fresh SQLite file, creates one user per client,
then every client sends `--requests` score requests (2 candidate responses, with and
without a summary: 4 reward-model rows each) as fast as it can. Prints p50/p95/max latency,
throughput, and the errors (there should be none).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

BODY = {"prompt": "Please talk about one kind of pets.",
        "responses": ["Dogs can learn more than a hundred words.", "Cats spend two-thirds of their lives asleep."],
        "summary": "The user prefers cats over dogs."}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--model-dir")
    args = parser.parse_args()

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    db = os.path.join(tempfile.mkdtemp(), "load.db")
    cmd = [sys.executable, "-m", "plusrl.cli", "serve", "--db", db, "--port", str(port), "--dataset", "pets"]
    server = subprocess.Popen(cmd + (["--model-dir", args.model_dir] if args.model_dir else []),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                httpx.get(f"{base}/api/health", timeout=1)
                break
            except httpx.TransportError:
                if server.poll() is not None:
                    sys.exit("server failed to start")
                time.sleep(0.2)
        users = [httpx.post(f"{base}/api/users", json={}).json() for _ in range(args.clients)]

        def client(user) -> tuple[list[float], list[str]]:
            latencies, errors = [], []
            with httpx.Client(base_url=base, timeout=120,
                              headers={"Authorization": f"Bearer {user['token']}"}) as c:
                for _ in range(args.requests):
                    start = time.perf_counter()
                    r = c.post(f"/api/users/{user['user_id']}/score", json=BODY)
                    latencies.append(time.perf_counter() - start)
                    if r.status_code != 200:
                        errors.append(f"HTTP {r.status_code}")
            return latencies, errors

        start = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            results = list(pool.map(client, users))
        wall = time.perf_counter() - start
    finally:
        server.kill()
        server.wait()

    latencies = sorted(x for lat, _ in results for x in lat)
    errors = [e for _, errs in results for e in errs]
    n = len(latencies)
    print(f"{args.clients} concurrent clients × {args.requests} score requests = {n} requests in {wall:.1f} s "
          f"({n / wall:.1f} requests/s, {4 * n / wall:.0f} reward-model rows/s)")
    print(f"latency p50 {1000 * statistics.median(latencies):.0f} ms, p95 {1000 * latencies[int(0.95 * (n - 1))]:.0f} ms, "
          f"max {1000 * latencies[-1]:.0f} ms; errors: {len(errors)}")


if __name__ == "__main__":
    main()
