from django.dispatch import Signal

# Every signal is sent after the transaction that changed the run commits; args: run.
job_dispatched = Signal()
job_started = Signal()
job_succeeded = Signal()
# Extra args: exception_text.
job_failed = Signal()
