"""Superset configuration for gridcredit (loaded through SUPERSET_CONFIG_PATH).

Everything comes from the environment, which `gridcredit bi up` sets (docker-compose sets the same
variables):

* ``GRIDCREDIT_SUPERSET_SECRETS``: the owner-only file written once per installation
  (``$GRIDCREDIT_HOME/secrets/superset.env``) holding ``SUPERSET_SECRET_KEY``; or
* ``SUPERSET_SECRET_KEY``: the key itself (docker-compose);
* ``SUPERSET_METADATA_URL`` (or ``SQLALCHEMY_DATABASE_URI``): the PostgreSQL database holding
  Superset's own metadata (``superset_meta`` on the warehouse server), never SQLite;
* ``GRIDCREDIT_SUPERSET_DATA_DIR``: Superset's local state folder;
* ``GRIDCREDIT_SUPERSET_HTTPS``: ``true`` when users reach Superset over HTTPS (Secure cookies,
  HSTS, proxy headers trusted).

Superset refuses to start (this module raises) with a missing, known or short SECRET_KEY, with a
secrets file readable by anyone but its owner, or without a PostgreSQL metadata database.
"""

from __future__ import annotations

import os
import stat
from datetime import timedelta
from pathlib import Path

# Keys published in Superset's code, docs, docker files and tutorials: refused whatever their length.
KNOWN_SECRET_KEYS = frozenset(
    {
        "CHANGE_ME_TO_A_COMPLEX_RANDOM_SECRET",
        "YOUR_OWN_RANDOM_GENERATED_SECRET_KEY",
        "TEST_NON_DEV_SECRET",
        "thisISaSECRET_1234",
        "\2\1thisismyscretkey\1\2\\e\\y\\y\\h",
        "superset",
        "secret",
        "changeme",
        "change_me",
        "supersecret",
    }
)
MIN_SECRET_KEY_LENGTH = 32


class InsecureConfigurationError(RuntimeError):
    """Superset must not start with this configuration."""


def _read_env_file(path: Path) -> dict[str, str]:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InsecureConfigurationError(
            f"{path} is readable by others (mode {stat.S_IMODE(mode):o}); it must be owner-only (chmod 600)"
        )
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def check_secret_key(key: str | None) -> str:
    """Return ``key`` if it is fit to sign sessions, else raise InsecureConfigurationError."""
    if not key:
        raise InsecureConfigurationError(
            "no SECRET_KEY: start Superset with `gridcredit bi up` (which generates one per installation) "
            "or set SUPERSET_SECRET_KEY"
        )
    if key in KNOWN_SECRET_KEYS or key.lower() in {known.lower() for known in KNOWN_SECRET_KEYS}:
        raise InsecureConfigurationError("SECRET_KEY is a published default; generate a random one")
    if len(key) < MIN_SECRET_KEY_LENGTH:
        raise InsecureConfigurationError(
            f"SECRET_KEY has {len(key)} characters; at least {MIN_SECRET_KEY_LENGTH} random characters are required"
        )
    if len(set(key)) < 12:
        raise InsecureConfigurationError("SECRET_KEY is not random enough (too few distinct characters)")
    return key


def _secret_key() -> str:
    key = os.environ.get("SUPERSET_SECRET_KEY")
    secrets_file = os.environ.get("GRIDCREDIT_SUPERSET_SECRETS")
    if not key and secrets_file:
        key = _read_env_file(Path(secrets_file)).get("SUPERSET_SECRET_KEY")
    return check_secret_key(key)


def _metadata_uri() -> str:
    uri = os.environ.get("SUPERSET_METADATA_URL") or os.environ.get("SQLALCHEMY_DATABASE_URI")
    if not uri:
        raise InsecureConfigurationError(
            "SUPERSET_METADATA_URL is not set: Superset's metadata lives in a PostgreSQL database "
            "(`gridcredit bi up` creates superset_meta on the warehouse)"
        )
    if not uri.startswith(("postgresql://", "postgresql+psycopg2://")):
        raise InsecureConfigurationError("Superset's metadata database must be PostgreSQL")
    return uri.replace("postgresql://", "postgresql+psycopg2://", 1)


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


SECRET_KEY = _secret_key()
SQLALCHEMY_DATABASE_URI = _metadata_uri()
SQLALCHEMY_EXAMPLES_URI = SQLALCHEMY_DATABASE_URI  # never load examples; never a SQLite file
DATA_DIR = os.environ.get("GRIDCREDIT_SUPERSET_DATA_DIR") or str(Path.home() / ".superset")
HTTPS = _flag("GRIDCREDIT_SUPERSET_HTTPS")

# -- features ---------------------------------------------------------------------------------
FEATURE_FLAGS = {
    # Jinja in SQL Lab, virtual datasets and RLS clauses: off (no templated SQL from users).
    "ENABLE_TEMPLATE_PROCESSING": False,
    "DASHBOARD_RBAC": False,
    "EMBEDDED_SUPERSET": False,
    "ALERT_REPORTS": False,
    "THUMBNAILS": False,
}
# SQL Lab: the warehouse connection is declared with allow_dml false (superset/assets/databases);
# these keep users from adding connections that could reach the metadata database or local files.
PREVENT_UNSAFE_DB_CONNECTIONS = True
SQLLAB_CTAS_NO_LIMIT = False
SQL_MAX_ROW = 100_000
SQLLAB_TIMEOUT = 60
SUPERSET_WEBSERVER_TIMEOUT = 60
ROW_LIMIT = 50_000

# -- sessions, CSRF, headers ------------------------------------------------------------------
WTF_CSRF_ENABLED = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = HTTPS
REMEMBER_COOKIE_HTTPONLY = True
REMEMBER_COOKIE_SECURE = HTTPS
PERMANENT_SESSION_LIFETIME = timedelta(hours=8)
ENABLE_PROXY_FIX = HTTPS  # behind a TLS-terminating proxy, trust its X-Forwarded-* headers

TALISMAN_ENABLED = True
# Everything is served by Superset itself: no third-party origins (no map tiles, no telemetry).
TALISMAN_CONFIG = {
    "content_security_policy": {
        "base-uri": ["'self'"],
        "default-src": ["'self'"],
        "img-src": ["'self'", "blob:", "data:"],
        "worker-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "object-src": "'none'",
        "style-src": ["'self'", "'unsafe-inline'"],
        "font-src": ["'self'", "data:"],
        "script-src": ["'self'", "'strict-dynamic'"],
        "frame-ancestors": ["'self'"],
        "form-action": ["'self'"],
    },
    "content_security_policy_nonce_in": ["script-src"],
    "force_https": False,  # TLS is the proxy's job; the Secure cookie flag follows HTTPS
    "session_cookie_secure": HTTPS,
    "strict_transport_security": HTTPS,
    "frame_options": "SAMEORIGIN",
}
TALISMAN_DEV_CONFIG = TALISMAN_CONFIG

# -- users --------------------------------------------------------------------------------------
AUTH_ROLE_PUBLIC = "Public"
PUBLIC_ROLE_LIKE = None  # anonymous users get nothing
AUTH_USER_REGISTRATION = False
RECAPTCHA_PUBLIC_KEY = ""

# -- caching and limits -------------------------------------------------------------------------
# No result cache: dashboards show what the last pipeline run published, and the latency figures
# (bench/bench_bi.py) measure the warehouse, not a cache.
CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
DATA_CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
RATELIMIT_STORAGE_URI = "memory://"
