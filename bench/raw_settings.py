"""The project's settings with django-q2's stock ORM broker, for raw django-q2 comparison rounds
(bench/jobs.py): same cluster settings, only the broker differs."""

from aktina.settings import *  # noqa: F403
from aktina.settings import Q_CLUSTER as _Q_CLUSTER

Q_CLUSTER = {k: v for k, v in _Q_CLUSTER.items() if k != "broker_class"}
Q_CLUSTER["orm"] = "default"
