"""Job arguments are data, not code: whatever a tampered ledger row holds, the worker builds
only registered job classes from JSON data, and a row it cannot build fails with a visible
reason instead of importing, unpickling or calling anything.

tests/jobs/test_ledger.py covers a tampered job name and an unknown model label; these add
serialisation tags, pickles and signatures.
"""

import base64
import pickle

import pytest

from aktina.jobs.models import JobRun
from aktina.jobs.worker import job_for_run, perform
from tests.jobs.sample_jobs import NoopJob

pytestmark = pytest.mark.django_db
Status = JobRun.Status


class _Boom:
    def __reduce__(self):
        return (exec, ("raise SystemExit('unpickled')",))


PICKLE = base64.b64encode(pickle.dumps(_Boom())).decode()


def tamper(**fields) -> JobRun:
    run = NoopJob.dispatch()
    JobRun.objects.filter(pk=run.pk).update(**fields)
    run.refresh_from_db()
    return run


def performed(run: JobRun) -> JobRun:
    perform(run.pk, 10)
    run.refresh_from_db()
    return run


@pytest.mark.parametrize(
    "argument",
    [
        {"__class__": "os.system", "args": ["touch /tmp/pwned"]},
        {"__reduce__": ["os.system", ["touch /tmp/pwned"]]},
        {"__import__": "subprocess"},
        {"__pickle__": PICKLE},
        {"py/object": "os.system"},
        {"__model__": "orders.order", "pk": {"__reduce__": ["os.system", ["id"]]}},
    ],
    ids=["class", "reduce", "import", "pickle-tag", "jsonpickle", "nested-in-model-pk"],
)
def test_unknown_tags_fail_the_run_with_a_reason(argument):
    run = performed(tamper(payload={"args": [argument], "kwargs": {}}))
    assert run.status == Status.FAILED
    assert "Unknown argument encoding" in run.last_error


def test_a_pickled_looking_string_stays_a_string():
    run = tamper(payload={"args": [PICKLE], "kwargs": {}})
    assert job_for_run(run).n == PICKLE  # never unpickled...
    assert performed(run).status == Status.SUCCEEDED  # ...and the job just gets the text


def test_dunder_keys_inside_a_dict_argument_are_plain_data():
    payload = {"args": [{"__dict__": {"__class__": "os.system", "__reduce__": "x"}}], "kwargs": {}}
    run = tamper(payload=payload)
    assert job_for_run(run).n == {"__class__": "os.system", "__reduce__": "x"}


@pytest.mark.parametrize(
    "payload",
    [
        {"args": [1, 2, 3], "kwargs": {}},
        {"args": [], "kwargs": {"command": "rm -rf /"}},
        PICKLE,
        ["os.system", "id"],
    ],
    ids=["too-many-args", "unknown-kwarg", "payload-is-a-pickle", "payload-is-a-list"],
)
def test_a_registered_job_with_a_wrong_payload_fails_cleanly(payload):
    run = performed(tamper(payload=payload))
    assert run.status == Status.FAILED
    assert run.finished_at is not None
    assert run.last_error.split(":")[0] in {"TypeError", "AttributeError"}


@pytest.mark.parametrize(
    "job_name",
    [
        "aktina.jobs.job.Job",  # the abstract base: importable, but not a registered job
        "pickle.loads",
        "tests.jobs.sample_jobs.marks_of",  # a function in a module that has jobs
        "tests.jobs.sample_jobs.NoopJob.handle",
    ],
)
def test_only_registered_job_classes_are_built(job_name):
    run = performed(tamper(job_name=job_name))
    assert run.status == Status.FAILED
    assert "not a registered job class" in run.last_error
