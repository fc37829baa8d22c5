#!/usr/bin/env bash
# Create or update Superset's own virtual environment (.venv-superset) from superset/requirements.txt.
# Superset 6 pins pandas<2.2 and SQLAlchemy<2, which clash with the pipeline's .venv: it gets its own.
# Idempotent: does nothing when the venv already matches the lock file (a stamp holds its hash).
#
#   bash superset/install.sh [VENV_DIR]        (default: <project>/.venv-superset; ~45-80 s the first time)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${1:-${GRIDCREDIT_SUPERSET_VENV:-$here/../.venv-superset}}"
python="${PYTHON:-python3}"
lock="$here/requirements.txt"
stamp="$venv/.gridcredit-installed"
want="$(sha256sum "$lock" | cut -d' ' -f1)"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/gunicorn" ]; then
  exit 0
fi
echo "installing Superset into $venv (pinned by superset/requirements.txt)"
test -x "$venv/bin/python" || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24" 2>&1 | grep -v '^WARNING: Location' || true
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$lock" 2>&1 | grep -v '^WARNING: Location' || true
# pip's exit status is lost in the pipe above: check the result instead.
"$venv/bin/python" -c "import superset, flask_caching, psycopg2, gunicorn, rich, cachetools, pyhive.sqlalchemy_hive, thrift_sasl" \
  || { echo "Superset install into $venv failed" >&2; exit 1; }
echo "$want" > "$stamp"
