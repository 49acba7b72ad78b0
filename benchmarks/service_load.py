"""Load test of the personalization service on loopback: 50 clients, then 49 beside one abuser.

    python benchmarks/service_load.py [--clients 50] [--rounds 10] [--model-dir RUN] [--mode both]

Starts `plusrl serve` on a free port with a fresh SQLite file and one user per client. Each
normal client does `--rounds` rounds of: read its summary, write a new summary version, score
two responses (with and without a summary: 4 reward-model rows). Latencies are reported as
p50/p95/p99 per kind of request.

- quiet: `--clients` normal clients.
- abusive: `--clients - 1` normal clients and one abuser (its own process) who, for as long as
  they run and each in its own thread, sends bodies over the size limit (with and without a
  token), 0.6 MB score requests (20k-character summary, 32 × 20k-character responses), floods of writes,
  context and registrations, and summary generations.

After each mode: every acknowledged write must be in its user's history, and the server process
must still be alive. The normal clients' p95 under abuse is printed against the quiet run's.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil

PROMPT = "Please talk about one kind of pets."
SCORE = {"prompt": PROMPT, "responses": ["Dogs can learn more than a hundred words.",
                                         "Cats spend two-thirds of their lives asleep."]}
HUGE_SCORE = {"prompt": PROMPT, "summary": "I like dogs. " * 1500, "responses": ["Dogs are loyal. " * 1240] * 32}
ADMIN = "load-test-admin"  # creates the clients' accounts: open registration is rate-limited per address
PAIR = {"kind": "pair", "prompt": PROMPT, "chosen": "Dogs greet you at the door.", "rejected": "Cats nap."}


def start_server(model_dir: str | None) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db = os.path.join(tempfile.mkdtemp(), "load.db")
    cmd = [sys.executable, "-m", "plusrl.cli", "serve", "--db", db, "--port", str(port), "--dataset", "pets"]
    server = subprocess.Popen(cmd + (["--model-dir", model_dir] if model_dir else []),
                              env={**os.environ, "PLUSRL_ADMIN_TOKEN": ADMIN},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    while True:
        try:
            httpx.get(f"{base}/api/health", timeout=1)
            return server, base
        except httpx.TransportError:
            if server.poll() is not None:
                sys.exit("server failed to start")
            time.sleep(0.2)


def normal_client(base: str, user: dict, rounds: int) -> tuple[dict[str, list[float]], list[str], list[str]]:
    """Latencies per kind, the texts of acknowledged writes, and errors."""
    latencies: dict[str, list[float]] = {"read": [], "write": [], "score": []}
    acknowledged, errors = [], []
    uid = user["user_id"]
    with httpx.Client(base_url=base, timeout=120, headers={"Authorization": f"Bearer {user['token']}"}) as c:
        for i in range(rounds):
            text = f"{uid} prefers dogs, edit {i}"
            for kind, send in (("read", lambda: c.get(f"/api/users/{uid}/summary")),
                               ("write", lambda: c.put(f"/api/users/{uid}/summary", json={"text": text})),
                               ("score", lambda: c.post(f"/api/users/{uid}/score", json=SCORE))):
                start = time.perf_counter()
                r = send()
                latencies[kind].append(time.perf_counter() - start)
                if r.status_code != 200:
                    errors.append(f"{kind}: HTTP {r.status_code}")
                elif kind == "write":
                    acknowledged.append(text)
    return latencies, acknowledged, errors


def abuser(base: str, user: dict, stop, results) -> None:
    """Everything one hostile client can send, each attack in its own thread, until told to stop
    (so a request the server makes wait, like the huge score, does not slow the floods).

    Runs in its own process, as a hostile client is another program: it shares this machine's
    cores with the server, but not the GIL of the process that times the normal clients.
    The counts of the server's answers go back through `results`."""
    statuses: Counter = Counter()
    uid, auth = user["user_id"], {"Authorization": f"Bearer {user['token']}"}
    oversized = b'{"items": [' + b'"x",' * 700_000 + b'"x"]}'  # 2.8 MB
    json_type = {"Content-Type": "application/json"}
    attacks = {
        "oversized, no token": lambda c: c.post(f"/api/users/{uid}/context", content=oversized, headers=json_type),
        "oversized": lambda c: c.post(f"/api/users/{uid}/context", content=oversized, headers={**auth, **json_type}),
        "0.6 MB score": lambda c: c.post(f"/api/users/{uid}/score", json=HUGE_SCORE, headers=auth),
        "write flood": lambda c: c.put(f"/api/users/{uid}/summary", json={"text": "spam " * 3000}, headers=auth),
        "registration flood": lambda c: c.post("/api/users", json={"name": "bot"}),
        "context flood": lambda c: c.post(f"/api/users/{uid}/context", json={"items": [PAIR] * 100}, headers=auth),
        "generation": lambda c: c.post(f"/api/users/{uid}/summary/generate", headers=auth),
    }
    lock = threading.Lock()

    def repeat(name, attack):
        with httpx.Client(base_url=base, timeout=120) as c:
            while not stop.is_set():
                try:
                    outcome = attack(c).status_code
                except httpx.TransportError as error:
                    outcome = type(error).__name__
                with lock:
                    statuses[f"{name}: {outcome}"] += 1

    threads = [threading.Thread(target=repeat, args=item) for item in attacks.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    results.put((statuses, usage.ru_utime + usage.ru_stime))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_mode(mode: str, args) -> dict[str, float]:
    server, base = start_server(args.model_dir)
    try:
        admin = {"Authorization": f"Bearer {ADMIN}"}
        users = [httpx.post(f"{base}/api/users", json={}, headers=admin).json() for _ in range(args.clients)]
        normal = users if mode == "quiet" else users[1:]
        processes = multiprocessing.get_context("spawn")
        stop, abuse_results, abuse = processes.Event(), processes.Queue(), None
        if mode == "abusive":
            abuse = processes.Process(target=abuser, args=(base, users[0], stop, abuse_results))
            abuse.start()
        with ThreadPoolExecutor(args.clients) as pool:
            start = time.perf_counter()
            results = list(pool.map(lambda u: normal_client(base, u, args.rounds), normal))
            wall = time.perf_counter() - start
        stop.set()
        abuse_statuses, abuser_cpu = abuse_results.get() if abuse else (None, 0.0)
        server_cpu = _cpu_seconds(server.pid)
        lost = 0
        for user, (_, acknowledged, _) in zip(normal, results):
            auth = {"Authorization": f"Bearer {user['token']}"}
            stored = {v["text"] for v in httpx.get(f"{base}/api/users/{user['user_id']}/summary/history",
                                                   params={"limit": 100}, headers=auth).json()}
            lost += len(set(acknowledged) - stored)
        alive = server.poll() is None
    finally:
        server.kill()
        server.wait()

    errors = [e for _, _, errs in results for e in errs]
    print(f"\n== {mode}: {len(normal)} normal clients × {args.rounds} rounds in {wall:.1f} s"
          + (" beside one abusive client" if abuse_statuses is not None else ""))
    p95 = {}
    for kind in ("read", "write", "score"):
        values = [x for lat, _, _ in results for x in lat[kind]]
        p95[kind] = percentile(values, 0.95)
        print(f"  {kind:5s} n={len(values):4d}  p50 {1000 * percentile(values, 0.5):7.0f} ms  "
              f"p95 {1000 * p95[kind]:7.0f} ms  p99 {1000 * percentile(values, 0.99):7.0f} ms")
    print(f"  errors {len(errors)} {Counter(errors).most_common(3)}; acknowledged writes lost: {lost}; "
          f"server alive: {alive}")
    print(f"  CPU seconds over the run: server {server_cpu:.0f} (with its summary process), "
          f"abuser {abuser_cpu:.0f}, of {os.cpu_count() * wall:.0f} available ({os.cpu_count()} cores × {wall:.0f} s)")
    if abuse_statuses is not None:
        print(f"  abuser's responses by status: {dict(abuse_statuses)}")
    return p95


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (the summary worker), so far."""
    process = psutil.Process(pid)
    return sum(sum(p.cpu_times()[:2]) for p in [process, *process.children(recursive=True)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--model-dir")
    parser.add_argument("--mode", choices=["quiet", "abusive", "both"], default="both")
    args = parser.parse_args()
    modes = ["quiet", "abusive"] if args.mode == "both" else [args.mode]
    p95 = {mode: run_mode(mode, args) for mode in modes}
    if len(p95) == 2:
        ratios = ", ".join(f"{k} {p95['abusive'][k] / p95['quiet'][k]:.2f}x" for k in p95["quiet"])
        print(f"\nnormal clients' p95 under abuse / quiet: {ratios} (target ≤ 2x)")


if __name__ == "__main__":
    main()
