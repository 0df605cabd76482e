"""`manage.py refresh_ml`: queue a refresh of segments and forecasts, or run it here (--sync).

ml.services (pandas, scikit-learn) is imported in ``handle``, after the arguments are parsed,
so a mistyped option answers at once.
"""

from __future__ import annotations

import sys

from django.core.management.base import CommandError

from aktina.core.commands import OneLineErrorsCommand
from ml.models import MAX_HORIZON, PredictionRun


def positive_horizon(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= MAX_HORIZON:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_HORIZON}, got {value}")
    return value


class Command(OneLineErrorsCommand):
    help = (
        "Recompute customer segments and sales forecasts as a new current run: dispatch the "
        "RefreshMLPredictions job (default) or run it in the foreground with --sync."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--sync", action="store_true", help="Run here and now, not on the ml-processing queue."
        )
        parser.add_argument(
            "--only",
            choices=[c for c, _ in PredictionRun.Only.choices],
            help="Refresh one kind; the other keeps its current results.",
        )
        parser.add_argument(
            "--freq",
            choices=[c for c, _ in PredictionRun.Freq.choices],
            default="W",
            help="Forecast periods: D(ay), W(eek, from Monday) or M(onth). Default W.",
        )
        parser.add_argument(
            "--horizon",
            type=positive_horizon,
            default=8,
            help="Periods to forecast. Default 8.",
        )

    def handle(self, *args, sync=False, only=None, freq="W", horizon=8, **options):
        if not sync:
            from ml.jobs import RefreshMLPredictions

            job_run = RefreshMLPredictions.dispatch(only=only, freq=freq, horizon=horizon)
            self.stdout.write(
                f"Dispatched RefreshMLPredictions as job run #{job_run.pk} on queue "
                f"{job_run.queue} (a refresh already waiting or running is reused)."
            )
            return
        from ml.services import MLRefreshError, ml_refresh

        bar = self._progress_bar()
        try:
            run = ml_refresh(only=only, freq=freq, horizon=horizon, progress=bar)
        except MLRefreshError as exc:
            raise CommandError(str(exc)) from exc
        except Exception as exc:
            raise CommandError(f"ML refresh failed: {type(exc).__name__}: {exc}") from exc
        finally:
            bar.close()
        self._summary(run)

    def _progress_bar(self) -> _Bar:
        # Only for a person watching: a log file or a pipe gets the summary alone.
        if not self.stdout.isatty():
            return _Bar(None)
        from tqdm import tqdm

        return _Bar(tqdm(total=1, desc="ML refresh", unit="step", file=sys.stderr, leave=False))

    def _summary(self, run: PredictionRun) -> None:
        write = self.stdout.write
        write(
            self.style.SUCCESS(
                f"ML run #{run.pk} succeeded in {run.duration.total_seconds():.1f} s: "
                f"{run.order_lines:,} order lines, {run.customers:,} customers, "
                f"{run.products:,} products (freq {run.freq}, horizon {run.horizon})."
            )
        )
        metrics = run.metrics
        if PredictionRun.Only.SEGMENTS in run.kinds:
            silhouette = metrics.get("silhouette")
            write("")
            write(
                f"Segments: k={metrics.get('k')}, silhouette "
                f"{'-' if silhouette is None else f'{silhouette:.3f}'}"
            )
            header = ("segment", "customers", "recency d", "orders", "spend")
            write("  {:<18} {:>9} {:>9} {:>7} {:>11}".format(*header))
            for profile in run.profiles.order_by("-size", "name"):
                write(
                    f"  {profile.name:<18} {profile.size:>9,} {profile.recency_days:>9.0f} "
                    f"{profile.frequency:>7.1f} {profile.monetary:>11,.2f}"
                )
        if PredictionRun.Only.FORECASTS in run.kinds:
            write("")
            write(f"Forecasts: {metrics.get('backtested', 0)} of {run.products} backtested")
            write(f"  {'model':<18} {'products':>9}")
            for model, count in metrics.get("models", {}).items():
                write(f"  {model:<18} {count:>9,}")
            ratio = metrics.get("holdout_geometric_mean_ratio")
            coverage = metrics.get("holdout_coverage")
            write(
                "  held-out MAE vs seasonal naive (windows the choice never saw), geometric "
                f"mean ratio: {_figure(ratio, '.3f')} (p10 "
                f"{_figure(metrics.get('holdout_ratio_p10'), '.2f')}, p90 "
                f"{_figure(metrics.get('holdout_ratio_p90'), '.2f')}; beaten "
                f"{metrics.get('holdout_beaten', 0)}, worse {metrics.get('holdout_worse', 0)})"
            )
            write(f"  80 % interval coverage on held-out windows: {_figure(coverage, '.1%')}")


def _figure(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


class _Bar:
    """A progress(done, total) callback driving a tqdm bar, or nothing."""

    def __init__(self, bar) -> None:
        self.bar = bar

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            return
        self.bar.total = max(total, 1)
        self.bar.n = done
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
