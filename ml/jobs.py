"""The nightly (and on-demand) refresh of segments and forecasts."""

from __future__ import annotations

from datetime import timedelta

from aktina.core.roles import OPERATIONS
from aktina.jobs import Job
from aktina.notifications.services import notification_send_to_role


class RefreshMLPredictions(Job):
    """Recompute customer segments and sales forecasts as a new current run."""

    queue = "ml-processing"
    timeout = 600
    tries = 2
    backoff = [300]
    # One refresh at a time: a second dispatch while one waits or runs returns that one.
    unique_for = timedelta(hours=2)
    # failed() below tells operations in words; the generic job alert would repeat it.
    notify_operations_on_failure = False

    def __init__(self, only: str | None = None, freq: str = "W", horizon: int = 8):
        self.only = only
        self.freq = freq
        self.horizon = horizon

    def unique_id(self) -> str:
        return "ml-refresh"

    def handle(self) -> None:
        # Imported here: pandas and scikit-learn take seconds to import, and every process that
        # loads the job registry (each qcluster, each web process) would pay for them at start.
        from ml.services import ml_refresh

        ml_refresh(only=self.only, freq=self.freq, horizon=self.horizon)

    def failed(self, exc: BaseException) -> None:
        run_id = self.run.pk if self.run is not None else "?"
        notification_send_to_role(
            role=OPERATIONS,
            kind="ml_refresh_failed",
            subject="ML refresh failed: segments and forecasts were not updated",
            body=(
                f"{type(exc).__name__}: {exc}\n\n"
                "The previous segments and forecasts are still served. Details: "
                "/admin/ml/predictionrun/ ; retry with `manage.py refresh_ml` or the "
                f"admin action. Job run #{run_id}."
            ),
            dedupe_key=f"ml-refresh-failed-{run_id}",
        )
