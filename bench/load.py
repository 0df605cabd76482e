"""HTTP plumbing shared by the API benchmarks: a real web server process and a threaded client.

`WebServer` starts gunicorn (or `runserver --noreload`) in its own process group against the
benchmark's environment; `ApiClient` is a `requests.Session` with a token; `hammer` runs a
request function from several threads and records latencies and errors.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import Process  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebServer(Process):
    """`gunicorn aktina.wsgi -w N` (default) or `manage.py runserver --noreload` on a free port,
    started at once and ready when `/api/health/` answers."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        workers: int = 2,
        kind: str = "gunicorn",
        wsgi: str = "aktina.wsgi",
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        if kind == "gunicorn":
            args = [
                str(Path(sys.executable).with_name("gunicorn")),
                wsgi,
                "-w",
                str(workers),
                "-b",
                f"127.0.0.1:{self.port}",
                "--backlog",
                "2048",
                "--log-level",
                "warning",
            ]
        else:
            args = [
                sys.executable,
                "manage.py",
                "runserver",
                f"127.0.0.1:{self.port}",
                "--noreload",
            ]
        super().__init__(args, {**env, "PYTHONUNBUFFERED": "1"}, prefix="web-")
        self.start()
        self.wait_ready()

    def wait_ready(self, timeout: float = 240) -> None:
        # Generous: each worker imports the whole app (pandas and scikit-learn through ml.jobs),
        # which takes 30 s and more on a loaded 2-core machine.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"web server exited: {self.log_text()[-2000:]}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/api/health/", timeout=2).status_code < 500:
                    return
            time.sleep(0.2)
        self.stop()  # not left behind by a caller whose constructor raised
        raise TimeoutError("web server did not start")


class ApiClient:
    """A token-authenticated session; one per thread (requests.Session is not thread-safe)."""

    def __init__(self, base_url: str, username: str, password: str):
        self.base = base_url
        self.session = requests.Session()
        response = self.session.post(
            f"{base_url}/api/auth/token/",
            json={"username": username, "password": password},
            timeout=30,
        )
        response.raise_for_status()
        self.session.headers["Authorization"] = f"Token {response.json()['token']}"

    def post(self, path: str, body: dict | None = None, **kwargs) -> requests.Response:
        return self.session.post(f"{self.base}{path}", json=body or {}, timeout=60, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.session.get(f"{self.base}{path}", timeout=60, **kwargs)

    def order_create(self, items: list[dict], **extra) -> requests.Response:
        return self.post("/api/orders/", {"items": items, "priority": "normal", **extra})


@dataclass
class Tally:
    """Latencies (ms) of successful responses, and errors apart, collected from many threads.

    An error response (4xx, 5xx, a failed connection) is no throughput: it is counted in
    `errors` and its latency kept in `error_latencies_ms`, never in `latencies_ms`."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_latencies_ms: list[float] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, ms: float, ok: bool, detail: str = "") -> None:
        with self.lock:
            if ok:
                self.latencies_ms.append(ms)
            else:
                self.errors += 1
                self.error_latencies_ms.append(ms)
                if len(self.error_samples) < 5:
                    self.error_samples.append(detail[:300])


def hammer(clients: list[ApiClient], request, *, seconds: float) -> tuple[Tally, float]:
    """Call `request(client, i)` in a loop from one thread per client for `seconds`; the function
    returns a Response. Returns the tally and the elapsed wall time."""
    tally = Tally()
    stop_at = time.perf_counter() + seconds

    def loop(client: ApiClient, offset: int) -> None:
        i = offset
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            try:
                response = request(client, i)
                ok, detail = response.status_code < 400, f"{response.status_code} {response.text}"
            except requests.RequestException as exc:
                ok, detail = False, repr(exc)
            tally.record((time.perf_counter() - started) * 1000, ok, detail)
            i += len(clients)

    started = time.perf_counter()
    threads = [threading.Thread(target=loop, args=(c, n)) for n, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return tally, time.perf_counter() - started
