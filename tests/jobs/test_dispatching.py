"""Dispatch: the spec, bulk dispatch (one INSERT for the runs, one for the tags, unique keys
honoured) and the wake-up NOTIFY on PostgreSQL."""

import datetime as dt

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from aktina.jobs import DispatchSpec, Job, batch, dispatch_many
from aktina.jobs import dispatching as dispatching_module
from aktina.jobs.models import JobRun, JobRunTag
from tests.conftest import IS_POSTGRES
from tests.factories import ProductFactory
from tests.jobs.sample_jobs import NoopJob, TaggedJob, UniqueJob

Status = JobRun.Status
NOTIFY = ["NOTIFY"] if IS_POSTGRES else []


def statements(queries) -> list[str]:
    """Each captured statement as its verb and table ("INSERT jobs_jobrun", "NOTIFY")."""
    out = []
    for q in queries.captured_queries:
        words = q["sql"].replace('"', "").split()
        verb = words[0].upper()
        if verb == "INSERT":
            out.append(f"INSERT {words[2]}")
        elif verb == "SELECT":
            out.append(f"SELECT {words[words.index('FROM') + 1]}")
        else:
            out.append(verb)
    return out


class FullOptionsJob(Job):
    """Every option a spec carries, set away from its default."""

    queue = "analytics"
    priority = 7
    timeout = 33
    tries = 4
    backoff = [1, 2.5]
    retry_for = dt.timedelta(minutes=30)
    unique_for = dt.timedelta(minutes=5)
    unique_until_processing = True

    def __init__(self, product, n: int):
        self.product, self.n = product, n

    def unique_id(self):
        return f"full-{self.n}"

    def tags(self):
        return [f"n:{self.n}"]

    def handle(self):
        return None


pytestmark = pytest.mark.django_db


def test_ten_thousand_runs_are_one_insert_and_their_tags_one_more():
    product = ProductFactory()
    jobs = [TaggedJob(f"l{i}", order=product) for i in range(10_000)]
    with CaptureQueriesContext(connection) as queries:
        runs = dispatch_many(jobs)
    # Whatever the count and the backend: SQLite's 999-parameter limit does not split it.
    assert statements(queries) == ["INSERT jobs_jobrun", "INSERT jobs_jobruntag", *NOTIFY]
    assert len(runs) == 10_000
    assert [r.payload["args"][0] for r in runs] == [f"l{i}" for i in range(10_000)]
    assert JobRun.objects.filter(status=Status.QUEUED).count() == 10_000
    ids = [r.pk for r in runs]
    assert ids == sorted(ids)
    assert set(ids) == set(JobRun.objects.values_list("pk", flat=True))
    # Each run got its own tags, not its neighbour's.
    tags = {(t.run_id, t.tag) for t in JobRunTag.objects.all()}
    assert len(tags) == 20_000
    assert (runs[4321].pk, "label:l4321") in tags
    assert (runs[4321].pk, f"product:{product.pk}") in tags


def test_a_bulk_run_is_the_same_row_as_a_single_dispatch():
    product = ProductFactory()

    def jobs():
        # Every column differs between the two, so each travels per row; a call of one job
        # sends equal columns once, which the 10 000-run test covers.
        return [FullOptionsJob(product, 1).delay(dt.timedelta(minutes=3)), NoopJob(5)]

    singles = [job.dispatch() for job in jobs()]
    JobRun.objects.filter(pk=singles[0].pk).update(unique_active=False)  # free the key
    bulks = dispatch_many(jobs())
    fields = [f.attname for f in JobRun._meta.concrete_fields]
    times = {"created_at", "available_at", "retry_until", "unique_until"}

    def row(run):
        values = JobRun.objects.filter(pk=run.pk).values(*fields).get()
        created = values["created_at"]
        offsets = {
            k: values[k] and (values[k] - created).total_seconds() for k in times - {"created_at"}
        }
        return {k: v for k, v in values.items() if k not in times | {"id"}}, offsets

    assert row(bulks[0]) == (row(singles[0])[0] | {"unique_active": True}, row(singles[0])[1])
    assert row(bulks[1]) == row(singles[1])
    for bulk in bulks:
        # What dispatch_many hands back is what the database holds.
        fresh = JobRun.objects.get(pk=bulk.pk)
        assert {f: getattr(bulk, f) for f in fields} == {f: getattr(fresh, f) for f in fields}
    assert sorted(JobRunTag.objects.filter(run=bulks[0]).values_list("tag", flat=True)) == [
        "n:1",
        f"product:{product.pk}",
    ]


def test_unique_keys_hold_in_bulk_as_in_a_single_dispatch():
    held = UniqueJob.dispatch("a")
    with CaptureQueriesContext(connection) as queries:
        runs = dispatch_many(
            [UniqueJob("a"), UniqueJob("b"), NoopJob(1), UniqueJob("b"), UniqueJob("c")]
        )
    # The active holders in one SELECT; the INSERT in a savepoint, for a key taken meanwhile.
    assert statements(queries) == [
        "SELECT jobs_jobrun",
        "SAVEPOINT",
        "INSERT jobs_jobrun",
        "RELEASE",
    ]  # no NOTIFY on PostgreSQL either: this transaction sent its one with `held`
    assert runs[0].pk == held.pk  # the active run comes back, as from UniqueJob.dispatch("a")
    assert runs[1].pk == runs[3].pk  # one run for a key repeated within the call
    assert len({r.pk for r in runs}) == 4
    assert JobRun.objects.filter(unique_key="unique-b", unique_active=True).count() == 1
    assert UniqueJob.dispatch("c").pk == runs[4].pk


def test_a_holder_past_its_unique_for_lets_go_in_bulk_too():
    old = UniqueJob.dispatch("a")
    JobRun.objects.filter(pk=old.pk).update(unique_until=timezone.now() - dt.timedelta(seconds=1))
    (run,) = dispatch_many([UniqueJob("a")])
    assert run.pk != old.pk
    old.refresh_from_db()
    assert (old.unique_active, run.unique_active) == (False, True)


def test_a_key_taken_between_the_look_and_the_insert_returns_its_holder(monkeypatch):
    # A concurrent dispatch commits "a" after our SELECT of holders: seen here as a SELECT that
    # finds nothing. The bulk INSERT then fails on the unique index and must not lose the rest.
    held = UniqueJob.dispatch("a")
    monkeypatch.setattr(dispatching_module, "_unique_holders", lambda keys, now: {})
    runs = dispatch_many([NoopJob(1), UniqueJob("a"), UniqueJob("b")])
    assert runs[1].pk == held.pk
    assert JobRun.objects.filter(job_name=NoopJob.job_name).count() == 1
    assert JobRun.objects.filter(unique_key="unique-b").count() == 1
    assert JobRun.objects.count() == 3


def test_a_rolled_back_bulk_dispatch_leaves_no_run_and_no_tag():
    product = ProductFactory()
    with pytest.raises(RuntimeError), transaction.atomic():
        dispatch_many([TaggedJob(str(i), order=product) for i in range(100)])
        raise RuntimeError("caller failed")
    assert (JobRun.objects.count(), JobRunTag.objects.count()) == (0, 0)


def test_an_unknown_queue_refuses_the_whole_bulk_dispatch():
    with pytest.raises(ValueError, match="Unknown queue"):
        dispatch_many([NoopJob(1), NoopJob(2).on_queue("nowhere")])
    assert not JobRun.objects.exists()


def test_a_batch_is_its_row_and_one_insert_for_its_members():
    with CaptureQueriesContext(connection) as queries:
        b = batch([NoopJob(i) for i in range(500)]).then(NoopJob(-1)).dispatch()
    kinds = [s for s in statements(queries) if s not in ("SAVEPOINT", "RELEASE")]
    assert kinds == ["INSERT jobs_jobbatch", "INSERT jobs_jobrun", *NOTIFY]
    assert b.runs.count() == 500 == b.total == b.pending


def test_a_batch_does_not_wait_for_a_member_that_collapsed_onto_another_run():
    held = UniqueJob.dispatch("a")
    b = batch([UniqueJob("a"), NoopJob(1), NoopJob(2)]).dispatch()
    b.refresh_from_db()
    assert (b.total, b.pending) == (2, 2)
    assert held.pk not in set(b.runs.values_list("pk", flat=True))


def test_stored_specs_read_back_to_the_spec_that_was_stored():
    spec = FullOptionsJob(ProductFactory(), 2).to_spec()
    assert isinstance(spec, DispatchSpec)
    assert DispatchSpec.from_stored(spec.to_stored()) == spec
    # A link stored before a field existed still reads (its default applies).
    stored = spec.to_stored()
    del stored["priority"], stored["retry_of"]
    assert DispatchSpec.from_stored(stored).priority == 0


# --- the wake-up NOTIFY (PostgreSQL) -------------------------------------------------------------
needs_postgres = pytest.mark.skipif(
    not IS_POSTGRES,
    reason="NOTIFY is PostgreSQL's; on SQLite a cluster finds new runs by polling only",
)


@pytest.fixture
def listener(transactional_db):
    """A second connection LISTENing on the channel; yields a function that drains it."""
    import psycopg

    db = connection.settings_dict
    conn = psycopg.connect(
        dbname=db["NAME"],
        host=db["HOST"] or None,
        port=db["PORT"] or None,
        user=db["USER"] or None,
        password=db["PASSWORD"] or None,
        autocommit=True,
    )
    conn.execute("LISTEN aktina_jobs")

    def heard() -> list[tuple[str, str]]:
        return [(n.channel, n.payload) for n in conn.notifies(timeout=0.5)]

    yield heard
    conn.close()


@needs_postgres
@pytest.mark.postgres
def test_a_transaction_dispatching_fifty_runs_notifies_once_at_commit(listener):
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        for i in range(25):
            NoopJob.dispatch(i)
        dispatch_many([NoopJob(i) for i in range(25)])
        assert listener() == []  # nothing before commit
    assert statements(queries).count("NOTIFY") == 1
    assert listener() == [("aktina_jobs", "")]
    assert JobRun.objects.count() == 50


@needs_postgres
@pytest.mark.postgres
def test_a_rolled_back_dispatch_notifies_nobody(listener):
    with pytest.raises(RuntimeError), transaction.atomic():
        dispatch_many([NoopJob(i) for i in range(50)])
        raise RuntimeError("caller failed")
    assert listener() == []


@needs_postgres
@pytest.mark.postgres
def test_a_dispatch_after_a_rolled_back_savepoint_still_notifies(listener):
    # The first NOTIFY went with its savepoint; the transaction still wrote a run, so it must
    # send another rather than believe it already did.
    with transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic():
            NoopJob.dispatch(1)
            raise RuntimeError("inner step failed")
        NoopJob.dispatch(2)
    assert listener() == [("aktina_jobs", "")]


@needs_postgres
@pytest.mark.postgres
def test_outside_a_transaction_each_dispatch_notifies_once(listener):
    NoopJob.dispatch(1)
    assert listener() == [("aktina_jobs", "")]
    dispatch_many([NoopJob(i) for i in range(50)])
    assert listener() == [("aktina_jobs", "")]
    assert JobRun.objects.count() == 51


# --- the front door ----------------------------------------------------------------------------
def test_every_name_the_front_door_lists_resolves():
    # Domain apps import only `aktina.jobs`: a rename behind it must fail here, not in an app.
    import aktina.jobs

    assert [n for n in aktina.jobs.__all__ if getattr(aktina.jobs, n, None) is None] == []


def test_unique_runs_cancel_cancels_the_waiting_holder_and_frees_its_key():
    from aktina.jobs import unique_key_release, unique_runs_cancel

    waiting = UniqueJob.dispatch("a")
    assert unique_runs_cancel(key="unique-a") == 1
    waiting.refresh_from_db()
    assert (waiting.status, waiting.unique_active) == (Status.CANCELLED, False)
    assert unique_runs_cancel(key="unique-a") == 0
    running = UniqueJob.dispatch("a")
    JobRun.objects.filter(pk=running.pk).update(status=Status.RUNNING)
    assert unique_runs_cancel(key="unique-a") == 0  # a started run finishes its attempt
    unique_key_release(run=running)
    assert UniqueJob.dispatch("a").pk != running.pk
