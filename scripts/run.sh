#!/usr/bin/env bash
# `make run`: the web server and the django-q2 cluster in one terminal; Ctrl-C stops both.
# Exits non-zero when either process fails on its own (a port already in use, a crash).
set -uo pipefail
PY=${PY:-.venv/bin/python}
PORT=${PORT:-8000}
# Links in e-mails and notifications point at this server unless the operator set SITE_URL.
if [ -z "${SITE_URL:-}" ] && ! grep -qs '^SITE_URL=' .env; then
  export SITE_URL="http://127.0.0.1:$PORT"
fi

# Fail before starting the cluster: runserver only finds out after it has started.
# SO_REUSEADDR as runserver sets it: only a listening socket makes the port "in use".
probe="import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', int(sys.argv[1])))"
if ! "$PY" -c "$probe" "$PORT" 2>/dev/null; then
  echo "make run: port $PORT on 127.0.0.1 is already in use (choose another: PORT=8001 make run)." >&2
  exit 1
fi

"$PY" manage.py qcluster &
cluster=$!
"$PY" manage.py runserver "127.0.0.1:$PORT" --noreload &
web=$!

stop() {
  # Background children of a script ignore SIGINT (qcluster keeps it ignored), so each gets a
  # signal it acts on, from here only: a Ctrl-C ends the pair with status 0, not make's Error 1.
  trap - INT TERM
  kill -TERM "$web" 2>/dev/null
  kill -TERM "$cluster" 2>/dev/null
  wait "$web" "$cluster" 2>/dev/null
  exit "${1:-0}"
}
trap 'stop 0' INT TERM

echo "Aktina SCM on http://127.0.0.1:$PORT/ (admin: /admin/, API docs: /api/docs/). Ctrl-C stops."
# Either process ending on its own ends the pair, with its status (1 if it said 0: it should
# not have ended at all).
wait -n "$web" "$cluster"
status=$?
stop $((status == 0 ? 1 : status))
