"""Django @task functions used by the Tasks API tests; workers import them through JOBS_IMPORT."""

import asyncio
import time

from aktina.jobs import PermanentError
from aktina.jobs.tasks_api import task
from tests.jobs.sample_jobs import mark


@task
def add(a, b):
    return a + b


@task(queue_name="urgent")
def shout(text: str) -> dict:
    return {"text": text.upper(), "parts": (1, 2)}


@task(takes_context=True, tries=3, backoff=[0], timeout=30)
def flaky(context, marks: str, failures: int) -> dict:
    mark(marks, "flaky", f"attempt={context.attempt}")
    if context.attempt <= failures:
        raise ValueError(f"flaky attempt {context.attempt}")
    return {"attempt": context.attempt, "result_id": context.task_result.id}


@task
def boom(message: str):
    raise KeyError(message)


@task(tries=5)
def refuses(message: str):
    raise PermanentError(message)


@task
def returns_a_set():
    return {1, 2}


@task
def mark_task(marks: str, name: str) -> str:
    mark(marks, name, "ran")
    return name


@task
async def async_add(a, b):
    await asyncio.sleep(0)
    return a + b


@task(takes_context=True, tries=3, timeout=60)
def slow_first_attempt(context, marks: str, name: str, sleep: float) -> dict:
    """Sleeps on its first attempt only, so a test can kill the worker running it."""
    mark(marks, name, f"start attempt={context.attempt}")
    if context.attempt == 1:
        time.sleep(sleep)
    mark(marks, name, "end")
    return {"attempt": context.attempt}
