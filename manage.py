#!/usr/bin/env python
import os
import sys


def _cluster_name(argv: list[str]) -> str | None:
    """`qcluster --name X` / `-n X` / `--name=X`, read before Django starts."""
    if len(argv) < 3 or argv[1] != "qcluster":
        return None
    for i, arg in enumerate(argv[2:], start=2):
        if arg in ("--name", "-n") and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--name="):
            return arg.split("=", 1)[1]
    return None


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aktina.settings")
    # django-q2 reads the cluster name when it is first imported, which app loading does
    # before the command parses --name; without this `qcluster --name X` serves the default.
    name = _cluster_name(sys.argv)
    if name:
        os.environ["Q_CLUSTER_NAME"] = name
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        settings.INSTALLED_APPS  # noqa: B018 - loads the settings: a bad variable fails here
    except ImproperlyConfigured as exc:
        sys.exit(f"configuration error: {exc}")
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
