#!/usr/bin/env bash
# `make run`: the web server and the django-q2 cluster in one terminal; Ctrl-C stops both.
set -uo pipefail
PY=${PY:-.venv/bin/python}
PORT=${PORT:-8000}

"$PY" manage.py qcluster &
cluster=$!
"$PY" manage.py runserver "127.0.0.1:$PORT" --noreload &
web=$!

stop() {
  # Background children of a script ignore SIGINT, so each gets a signal it acts on.
  trap - INT TERM
  kill -TERM "$web" 2>/dev/null
  kill -TERM "$cluster" 2>/dev/null
  wait "$web" "$cluster" 2>/dev/null
  exit 0
}
trap stop INT TERM

echo "Aktina SCM on http://127.0.0.1:$PORT/ (admin: /admin/, API docs: /api/docs/). Ctrl-C stops."
# Either process ending on its own ends the pair.
wait -n "$web" "$cluster"
stop
