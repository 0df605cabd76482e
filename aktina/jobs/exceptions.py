class PermanentError(Exception):
    """Raised by a handler when retrying cannot help: the run fails at once."""


class JobNotRegistered(LookupError):
    """A ledger row names a class that is not a registered job; nothing is imported for it."""


class Release(Exception):
    """Raised by `Job.release()`: put the run back without counting the attempt."""

    def __init__(self, delay: float = 0):
        super().__init__(f"released for {delay:.1f}s")
        self.delay = delay


class JobTimedOut(Exception):
    """The run outlived its lease: it timed out or its worker died."""


class JobTerminated(Exception):
    """An operator stopped the running run (`manage.py jobs terminate`)."""
