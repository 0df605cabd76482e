"""Bench-only settings for raw django-q2: the app's settings with django-q2's stock ORM broker,
whatever broker the ledger uses, so bench/peers.py compares the ledger with the stock queue on
the same cluster settings."""

from aktina.settings import *  # noqa: F403

Q_CLUSTER = {k: v for k, v in Q_CLUSTER.items() if k not in ("broker_class", "django_redis")}  # noqa: F405
Q_CLUSTER["orm"] = "default"
