"""What the benchmarks run: a raw django-q2 no-op function and a ledger no-op job."""

from aktina.jobs import Job


def noop(*args, **kwargs):
    return None


class BenchNoopJob(Job):
    queue = "default"
    timeout = 60

    def __init__(self, n: int = 0):
        self.n = n

    def handle(self) -> None:
        return None
