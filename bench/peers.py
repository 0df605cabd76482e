"""The ledger next to its peers: the same N no-op jobs drained by each, on one machine.

    python bench/peers.py [--database-url postgres://postgres@127.0.0.1:5432/h_bench_peers]
                          [--redis-url redis://127.0.0.1:6379/5] [--n 2000] [--rounds 3]
                          [--workers 2] [--systems aktina,django_q2,procrastinate,celery]

Systems: `aktina` (the ledger, its default broker), `django_q2` (raw `async_task` on django-q2's
stock ORM broker, same cluster settings: bench/raw_q2_settings.py), `procrastinate` (PostgreSQL,
`concurrency` = workers, table statistics taken after enqueueing) and `celery` (Redis broker,
`acks_late` + `task_reject_on_worker_lost`, prefork pool of `workers`, no mingle/gossip/heartbeat).

Each round and system: N jobs are enqueued while no worker runs, then the worker starts and
the clock with it. The driver polls how many jobs are left (every 20 ms) until none is;
`jobs_per_s` is N / time from worker start (start-up included), `steady_jobs_per_s` the rate
between 10 % and 90 % done. `commits_per_job` is the target database's `xact_commit` delta
(pg_stat_database) from worker start until the worker has stopped, minus the driver's own
polls, per job (Celery: none, its broker is Redis). Rounds interleave the systems; medians.

The peers come from requirements-bench.txt (pinned) in a venv of their own, which this script
builds under build/venv-peers on first use (they would downgrade a pin of the app's venv) and
rebuilds when requirements-bench.txt changes; `--peer-python` names another interpreter. Worker
logs go to build/peers-logs/. Every process a run starts is stopped by its own id (a process
group it leads).

Printed: per system the median and [min-max] of the interleaved rounds; then ledger ÷ Celery,
ledger ÷ procrastinate and ledger ÷ raw django-q2 (ratio of the medians, with the spread of the
per-round ratios) and the ledger's commits per job. The last line is JSON (keys in JSON_KEYS):
one object per system (null if not run), `ledger_per_<peer>` ratios, `ledger_commits_per_job`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import Process, emit  # noqa: E402

APP_PYTHON = sys.executable
PEER_VENV = ROOT / "build" / "venv-peers"
LOG_DIR = ROOT / "build" / "peers-logs"
SYSTEMS = ("aktina", "django_q2", "procrastinate", "celery")
POLL_S = 0.02
FIGURES = ("jobs_per_s", "steady_jobs_per_s", "commits_per_job", "first_done_s")
JSON_KEYS = (
    *SYSTEMS,
    "ledger_per_celery",
    "ledger_per_procrastinate",
    "ledger_per_django_q2",
    "ledger_commits_per_job",
    "n",
    "rounds",
)


# --- processes ----------------------------------------------------------------------------
def worker(args: list[str], env: dict[str, str], name: str) -> Process:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    return Process(args, env, log_path=LOG_DIR / f"{name}.log").start()


def peer_venv() -> Path:
    """build/venv-peers with requirements-bench.txt installed; (re)built when the file changes."""
    requirements = ROOT / "requirements-bench.txt"
    python = PEER_VENV / "bin" / "python"
    stamp = PEER_VENV / ".requirements-bench.txt"
    if python.exists() and stamp.exists() and stamp.read_text() == requirements.read_text():
        return python
    print(f"building {PEER_VENV.relative_to(ROOT)} from requirements-bench.txt", flush=True)
    subprocess.run([APP_PYTHON, "-m", "venv", "--clear", str(PEER_VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "-r", str(requirements)], check=True
    )
    stamp.write_text(requirements.read_text())
    return python


def run(args: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if result.returncode:
        raise SystemExit(f"{' '.join(args[:4])}: {result.stderr.strip().splitlines()[-1:]}")


# --- databases ----------------------------------------------------------------------------
def admin_url(url: str) -> str:
    return url.rsplit("/", 1)[0] + "/postgres"


def recreate(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def commits(url: str) -> int:
    """xact_commit of `url`'s database, read from another database (the read adds nothing),
    once it has settled: a backend's counts arrive when it exits or idles."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    last = None
    with psycopg.connect(admin_url(url), autocommit=True) as conn:
        for _ in range(50):
            conn.execute("SELECT pg_stat_clear_snapshot()")
            row = conn.execute(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", [name]
            ).fetchone()
            if row[0] == last:
                return int(last)
            last = row[0]
            time.sleep(0.3)
    return int(last)


# --- the systems --------------------------------------------------------------------------
class System:
    name: str
    uses_postgres = True

    def __init__(self, args, base_url: str):
        self.args = args
        self.url = f"{base_url}_{self.name}"
        self.env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def prepare(self) -> None: ...
    def enqueue(self) -> None: ...
    def start(self) -> Process: ...
    def left(self) -> int: ...
    def poll_commits(self) -> int:
        return 0  # each poll of the target database is one commit there

    def close(self) -> None: ...


class DjangoSystem(System):
    settings = "aktina.settings"

    def __init__(self, args, base_url):
        super().__init__(args, base_url)
        self.env.update(
            DATABASE_URL=self.url,
            DJANGO_SETTINGS_MODULE=self.settings,
            DJANGO_SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", "bench-only-secret-0123456789"),
            JOBS_IMPORT="bench.tasks",
            Q_WORKERS=str(args.workers),
        )  # fmt: skip
        self.conn = None
        self.polls = 0

    def prepare(self) -> None:
        recreate(self.url)
        run([APP_PYTHON, "manage.py", "migrate", "--verbosity", "0"], self.env)
        run([APP_PYTHON, "manage.py", "createcachetable"], self.env)

    def enqueue(self) -> None:
        self._sql(self.clear_sql)
        run([APP_PYTHON, __file__, "--enqueue", self.name, "--n", str(self.args.n)], self.env)

    def start(self) -> Process:
        self.polls = 0
        return worker([APP_PYTHON, "manage.py", "qcluster"], self.env, self.name)

    def left(self) -> int:
        self.polls += 1
        return self._sql(self.left_sql)

    def poll_commits(self) -> int:
        return self.polls

    def _sql(self, sql: str) -> int:
        import psycopg

        if self.conn is None or self.conn.closed:
            self.conn = psycopg.connect(self.url, autocommit=True)
        row = self.conn.execute(sql).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()  # its pending statistics are flushed when its backend exits


class Aktina(DjangoSystem):
    name = "aktina"
    clear_sql = "WITH d AS (DELETE FROM jobs_jobrun RETURNING 1) SELECT count(*) FROM d"
    left_sql = "SELECT count(*) FROM jobs_jobrun WHERE status IN ('queued', 'running')"


class DjangoQ2(DjangoSystem):
    name = "django_q2"
    settings = "bench.raw_q2_settings"
    clear_sql = "WITH d AS (DELETE FROM django_q_ormq RETURNING 1) SELECT count(*) FROM d"
    left_sql = "SELECT count(*) FROM django_q_ormq"


class Procrastinate(DjangoSystem):
    name = "procrastinate"
    clear_sql = "WITH d AS (DELETE FROM procrastinate_jobs RETURNING 1) SELECT count(*) FROM d"
    left_sql = "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"

    def __init__(self, args, base_url):
        super().__init__(args, base_url)
        self.env.update(PEER_SYSTEM="procrastinate", PEER_DATABASE_URL=self.url)

    def prepare(self) -> None:
        recreate(self.url)
        run([self.args.peer_python, "-m", "procrastinate", "--app", "bench.peer_apps.procrastinate",
             "schema", "--apply"], self.env)  # fmt: skip

    def enqueue(self) -> None:
        self._sql(self.clear_sql)
        run([self.args.peer_python, "bench/peer_apps.py", "enqueue", self.name, str(self.args.n)],
            self.env)  # fmt: skip
        self._sql("SELECT count(*) FROM procrastinate_jobs")
        self.conn.execute("ANALYZE procrastinate_jobs")

    def start(self) -> Process:
        self.polls = 0
        return worker(
            [self.args.peer_python, "-m", "procrastinate", "--app", "bench.peer_apps.procrastinate",
             "worker", "--concurrency", str(self.args.workers), "--queues", "bench"],
            self.env, self.name,
        )  # fmt: skip


class Celery(System):
    name = "celery"
    uses_postgres = False

    def __init__(self, args, base_url):
        super().__init__(args, base_url)
        self.queue = "h_bench_celery"
        self.env.update(PEER_SYSTEM="celery", PEER_REDIS_URL=args.redis_url,
                        PEER_CELERY_QUEUE=self.queue)  # fmt: skip
        import redis

        self.redis = redis.Redis.from_url(args.redis_url)

    def prepare(self) -> None:
        self.redis.delete(self.queue, "unacked", "unacked_index", "unacked_mutex")

    def enqueue(self) -> None:
        self.prepare()
        run([self.args.peer_python, "bench/peer_apps.py", "enqueue", self.name, str(self.args.n)],
            self.env)  # fmt: skip

    def start(self) -> Process:
        return worker(
            [self.args.peer_python, "-m", "celery", "-A", "bench.peer_apps:celery", "worker",
             "--pool", "prefork", "--concurrency", str(self.args.workers), "--queues", self.queue,
             "--without-mingle", "--without-gossip", "--without-heartbeat",
             "--loglevel", "WARNING"],
            self.env, self.name,
        )  # fmt: skip

    def left(self) -> int:
        # Waiting in the list, or delivered and not yet acknowledged (acks_late).
        pipe = self.redis.pipeline()
        pipe.llen(self.queue)
        pipe.hlen("unacked")
        waiting, unacked = pipe.execute()
        return waiting + unacked


# --- one drain ----------------------------------------------------------------------------
def drain(system: System, n: int, timeout: float = 600) -> dict:
    system.enqueue()
    left = system.left()
    if left != n:
        raise SystemExit(f"{system.name}: {left} jobs enqueued, expected {n}")
    system.close()
    before = commits(system.url) if system.uses_postgres else 0
    system.polls = 0
    started = time.perf_counter()
    process = system.start()
    samples = []
    try:
        while True:
            left = system.left()
            now = time.perf_counter() - started
            samples.append((now, n - left))
            if left == 0:
                break
            if now > timeout:
                raise SystemExit(f"{system.name}: {left} jobs left after {timeout:.0f} s")
            if process.proc.poll() is not None:
                raise SystemExit(f"{system.name}: the worker exited, see {process.log_path}")
            time.sleep(POLL_S)
    finally:
        process.stop()
    elapsed = samples[-1][0]
    polls = system.poll_commits()
    system.close()
    after = commits(system.url) if system.uses_postgres else 0
    first = next(t for t, done in samples if done > 0)
    t10 = next(t for t, done in samples if done >= 0.1 * n)
    t90 = next(t for t, done in samples if done >= 0.9 * n)
    return {
        "jobs_per_s": n / elapsed,
        "steady_jobs_per_s": 0.8 * n / (t90 - t10) if t90 > t10 else None,
        "commits_per_job": (after - before - polls) / n if system.uses_postgres else None,
        "first_done_s": first,
    }


def enqueue_django(system: str, n: int) -> None:
    """`--enqueue aktina|django_q2`: N no-ops into the stopped cluster's queue, one transaction."""
    import django

    django.setup()
    from django.db import transaction

    if system == "aktina":
        from bench.tasks import BenchNoopJob

        with transaction.atomic():
            for i in range(n):
                BenchNoopJob.dispatch(i)
    else:
        from django_q.tasks import async_task

        with transaction.atomic():
            for i in range(n):
                async_task("bench.tasks.noop", i)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/h_bench_peers"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument(
        "--peer-python", default=None, help="the peers' interpreter (default: build/venv-peers)"
    )
    parser.add_argument("--enqueue", choices=["aktina", "django_q2"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.enqueue:
        enqueue_django(args.enqueue, args.n)
        return
    if not args.database_url.startswith("postgres"):
        raise SystemExit("bench/peers.py needs PostgreSQL (procrastinate runs only there)")
    chosen = [s for s in args.systems.split(",") if s]
    if unknown := set(chosen) - set(SYSTEMS):
        raise SystemExit(f"unknown systems: {', '.join(sorted(unknown))}")
    if {"procrastinate", "celery"} & set(chosen):
        if args.peer_python is None:
            args.peer_python = str(peer_venv())
        elif not Path(args.peer_python).exists():
            raise SystemExit(f"--peer-python {args.peer_python}: no such interpreter")
    classes = {"aktina": Aktina, "django_q2": DjangoQ2, "procrastinate": Procrastinate,
               "celery": Celery}  # fmt: skip
    systems = [classes[name](args, args.database_url) for name in chosen]
    for system in systems:
        system.prepare()
    results: dict[str, list[dict]] = {s.name: [] for s in systems}
    for r in range(args.rounds):
        # Interleaved, and the order rotates: no system always goes first on a cold machine.
        for system in systems[r % len(systems) :] + systems[: r % len(systems)]:
            out = drain(system, args.n)
            results[system.name].append(out)
            cpj = out["commits_per_job"]
            print(
                f"round {r + 1} {system.name:14s} {out['jobs_per_s']:6.0f} jobs/s, steady "
                f"{out['steady_jobs_per_s'] or 0:6.0f}, "
                f"first done after {out['first_done_s']:.2f} s"
                + (f", {cpj:.2f} commits/job" if cpj is not None else ""),
                flush=True,
            )
    print(f"n={args.n}, workers={args.workers}, rounds={args.rounds}; median [min-max]")
    summary: dict = {name: None for name in SYSTEMS}
    for name, outs in results.items():
        figures = {}
        for key in FIGURES:
            values = [o[key] for o in outs if o[key] is not None]
            figures[key] = round(statistics.median(values), 2) if values else None
            figures[f"{key}_min"] = round(min(values), 2) if values else None
            figures[f"{key}_max"] = round(max(values), 2) if values else None
            if values:
                print(f"  {name:14s} {key:18s} {statistics.median(values):8.2f} "
                      f"[{min(values):.2f}-{max(values):.2f}]")  # fmt: skip
        summary[name] = figures

    def ledger_per(peer: str) -> float | None:
        if "aktina" not in results or peer not in results:
            return None
        ledger = statistics.median(o["jobs_per_s"] for o in results["aktina"])
        other = statistics.median(o["jobs_per_s"] for o in results[peer])
        per_round = [
            a["jobs_per_s"] / b["jobs_per_s"]
            for a, b in zip(results["aktina"], results[peer], strict=True)
        ]
        print(f"ledger ÷ {peer}: {ledger / other:.2f} "
              f"(per round {min(per_round):.2f}-{max(per_round):.2f})")  # fmt: skip
        return round(ledger / other, 3)

    ratios = {f"ledger_per_{peer}": ledger_per(peer) for peer in SYSTEMS[1:]}
    ledger_commits = summary["aktina"]["commits_per_job"] if summary["aktina"] else None
    if ledger_commits is not None:
        print(f"ledger commits per job: {ledger_commits:.2f}")
    emit(
        {
            **summary,
            **ratios,
            "ledger_commits_per_job": ledger_commits,
            "n": args.n,
            "rounds": args.rounds,
        },
        JSON_KEYS,
    )


if __name__ == "__main__":
    main()
