#!/usr/bin/env bash
# Install the Debian packages the test suite needs. As root: apt-get. Otherwise: check, and if
# something is missing print the exact command to run and fail.
set -euo pipefail

missing=()
# Debian's PostgreSQL 15 server: a marked subset of the tests also runs against it.
[ -x /usr/lib/postgresql/15/bin/initdb ] || missing+=(postgresql-15)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  echo "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "missing system packages: ${missing[*]}" >&2
  echo "run: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
