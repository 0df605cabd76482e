"""Horizon tools with a big ledger: tag search, per-job-class metrics, the queue page.

    python bench/horizon.py [--runs 1000000] [--small 10000] [--repeats 5]
                            [--database-url postgres://postgres@127.0.0.1:5432/h_horizon_bench]
    python bench/horizon.py --dispatch 2000 [--repeats 5] [--database-url ...]

Fills the ledger as bench/queues.py does (a week of traffic, every run's argument an order)
and tags every run `order:<pk>` as dispatch would. At `--small` and at `--runs` runs it times
(median of `--repeats` after one warm-up, with min-max spread): `job_stats()`, the order
detail's job list by tag, the same list by the JSON scan it replaced, the admin searching a
tag, and the whole queue page. Counts each call's queries at both sizes.

`--dispatch N` instead measures what tags cost at dispatch: N dispatches of the approval job,
each for a different order (a fresh argument, so every dispatch creates a run and writes its
`order:<pk>` tag; the same order twice would return the first run and write nothing), each in
its own transaction as a web request makes them, with the tag INSERT and with it switched off,
alternating, `--repeats` rounds each. The ledger is emptied between rounds (outside the clock).
Prints the runs created and tag rows written per round, so a round that wrote none shows.

Last line is JSON (keys in JSON_KEYS, JSON_KEYS_DISPATCH).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import emit, median, setup_django
from bench.queues import fill

JSON_KEYS = ("database", "repeats", "small", "large")
JSON_KEYS_DISPATCH = ("dispatches", "tagged", "untagged", "runs_per_round", "tag_rows_per_round")

ORDER_PK = 4242  # an order with runs (the fill spreads runs over 250 000 orders)


def tags_fill() -> float:
    """One `order:<pk>` tag per run, from its payload, in one INSERT ... SELECT."""
    from django.db import connection, transaction

    started = time.perf_counter()
    pk = (
        "payload->'args'->0->>'pk'"
        if connection.vendor == "postgresql"
        else "json_extract(payload, '$.args[0].pk')"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM jobs_jobruntag")
        cursor.execute(
            "INSERT INTO jobs_jobruntag (run_id, tag) "
            f"SELECT id, 'order:' || ({pk}) FROM jobs_jobrun"
        )
    with connection.cursor() as cursor:
        cursor.execute(
            "VACUUM (ANALYZE) jobs_jobruntag" if connection.vendor == "postgresql" else "ANALYZE"
        )
    return time.perf_counter() - started


def timed(call, repeats: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    call()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    with CaptureQueriesContext(connection) as captured:
        call()
    return {
        "ms": round(median(samples), 1),
        "min": round(min(samples), 1),
        "max": round(max(samples), 1),
        "queries": len(captured),
    }


def measure(client, repeats: int) -> dict:
    from datetime import timedelta

    from aktina.jobs.models import JobRun
    from aktina.jobs.selectors import job_stats
    from orders.models import Order
    from orders.selectors import ORDER_JOBS_LIMIT, order_job_runs

    order = Order(pk=ORDER_PK)
    oldest = JobRun.objects.order_by("id").values_list("created_at", flat=True).first()

    def json_scan():
        # What order_job_runs did before tags (bounded by the order's creation time, here the
        # ledger's oldest run: an order a week old).
        runs = JobRun.objects.filter(
            created_at__gte=oldest - timedelta(seconds=1), payload__args__0__pk=ORDER_PK
        ).order_by("id")[:ORDER_JOBS_LIMIT]
        return list(runs)

    def page(url):
        def get():
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)

        return get

    found_tag = {r.pk for r in order_job_runs(order=order)}
    found_json = {r.pk for r in json_scan()}
    assert found_tag == found_json, "the tag list and the JSON scan disagree"
    return {
        "job_stats": timed(job_stats, repeats),
        "order_jobs_by_tag": timed(lambda: order_job_runs(order=order), repeats),
        "order_jobs_by_json_scan": timed(json_scan, repeats),
        "admin_tag_search": timed(page(f"/admin/jobs/jobrun/?q=order:{ORDER_PK}"), repeats),
        "queue_page": timed(page("/dashboard/queues/"), repeats),
        "order_runs_found": len(found_tag),
    }


def dispatch_cost(n: int, repeats: int) -> dict:
    from django.db import transaction

    import aktina.jobs.dispatching as dispatching
    from aktina.jobs.models import JobRun, JobRunTag
    from orders.jobs import ProcessOrderApprovalJob
    from tests.factories import OrderFactory, UserFactory

    customer = UserFactory()
    orders = [OrderFactory(customer=customer) for _ in range(n)]
    write = dispatching.run_tags_write
    written: dict[str, list[tuple[int, int]]] = {"tagged": [], "untagged": []}

    def one_round(tagged: bool) -> float:
        JobRun.objects.all().delete()  # each order's unique key free again; tags go with runs
        dispatching.run_tags_write = write if tagged else (lambda *, runs: None)
        try:
            start = time.perf_counter()
            for order in orders:
                with transaction.atomic():
                    ProcessOrderApprovalJob(order).dispatch()
            took = time.perf_counter() - start
        finally:
            dispatching.run_tags_write = write
        written["tagged" if tagged else "untagged"].append(
            (JobRun.objects.count(), JobRunTag.objects.count())
        )
        return took / n * 1e6

    samples = {"tagged": [], "untagged": []}
    one_round(True)  # warm-up
    written["tagged"].clear()
    for _ in range(repeats):
        samples["tagged"].append(one_round(True))
        samples["untagged"].append(one_round(False))
    for kind, rows in written.items():
        print(f"{kind}: runs created, tag rows written per round: {rows}")
    return {
        **{
            k: {"us_per_dispatch": round(median(v)), "min": round(min(v)), "max": round(max(v))}
            for k, v in samples.items()
        },
        "runs_per_round": median([runs for runs, _ in written["tagged"]]),
        "tag_rows_per_round": median([tags for _, tags in written["tagged"]]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--dispatch", type=int, default=0, help="measure dispatch cost only")
    args = parser.parse_args()
    setup_django(args.database_url, "horizon", DJANGO_ALLOWED_HOSTS="testserver,localhost")
    if args.dispatch:
        emit(
            {"dispatches": args.dispatch, **dispatch_cost(args.dispatch, args.repeats)},
            JSON_KEYS_DISPATCH,
        )
        return

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    admin = get_user_model().objects.create_superuser(
        "bench-admin", "bench-admin@example.com", "bench-password-1"
    )
    client = Client()
    client.force_login(admin)
    results = {"database": connection.vendor, "repeats": args.repeats}
    for label, size in (("small", args.small), ("large", args.runs)):
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM jobs_jobruntag")  # before fill() empties the ledger
        seconds = fill(size) + tags_fill()
        results[label] = {"runs": size, **measure(client, args.repeats)}
        sys.stdout.write(f"{label}: {size} runs filled and tagged in {seconds:.1f} s\n")
        for name, figures in results[label].items():
            sys.stdout.write(f"  {name:<26} {figures}\n")
    emit(results, JSON_KEYS)


if __name__ == "__main__":
    main()
