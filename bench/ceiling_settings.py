"""Bench-only settings: the app's settings plus one minimal DRF endpoint (bench/ceiling_urls.py),
so bench/api.py can measure the app and a one-insert ceiling on the same gunicorn workers."""

from aktina.settings import *  # noqa: F403

ROOT_URLCONF = "bench.ceiling_urls"
