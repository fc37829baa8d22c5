#!/usr/bin/env bash
# Install the Debian packages the test suite needs. As root: apt-get. Otherwise: check, and if
# something is missing print the exact command to run and fail.
set -euo pipefail

missing=()
# Debian's PostgreSQL 15 server: a marked subset of the tests also runs against it.
[ -x /usr/lib/postgresql/15/bin/initdb ] || missing+=(postgresql-15)
# Debian's Chromium: the BI tests drive it headless with Playwright (playwright cannot download browsers here).
[ -x /usr/bin/chromium ] || missing+=(chromium)
# A CJK font, so region names (Chinese) render in the dashboards' screenshots instead of empty boxes.
[ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei)
# Java 17: the Spark engine (pyspark 4.0 wheel) and its tests (tests/test_spark.py).
command -v java >/dev/null 2>&1 && java -version 2>&1 | grep -qE 'version "(1[7-9]|2[0-9])' || missing+=(openjdk-17-jre-headless)

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
