#!/usr/bin/env bash
# Install and start what the tests need from Debian packages: a PostgreSQL server (for
# multi-process search) and headless Chromium (for report and web-page tests).
# Prints the environment variables the tests read; use: eval "$(bash scripts/services.sh)"
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
need=""
command -v chromium >/dev/null 2>&1 || need="$need chromium fonts-dejavu-core"
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need="$need postgresql"
if [ -n "$need" ]; then
  $SUDO apt-get update -qq >&2
  $SUDO apt-get install -y -qq $need >&2
fi
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
PGDATA=${ARCHTUNE_PGDATA:-/tmp/archtune-pg}
PGPORT=${ARCHTUNE_PGPORT:-54329}
RUN=""; [ "$(id -u)" -eq 0 ] && RUN="runuser -u postgres --"   # pg_ctl refuses to run as root
if ! "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT"; then  # reuse a server already listening
  rm -rf "$PGDATA"; mkdir -p "$PGDATA"
  [ -z "$RUN" ] || chown postgres "$PGDATA"
  $RUN "$PGBIN/initdb" -D "$PGDATA" -A trust -U archtune >&2
  $RUN "$PGBIN/pg_ctl" -D "$PGDATA" -o "-p $PGPORT -k /tmp -c listen_addresses=127.0.0.1" \
    -l "$PGDATA/log" -w -t 180 start >&2
fi
echo "export ARCHTUNE_TEST_PG_URL=postgresql://archtune@127.0.0.1:$PGPORT/postgres"
echo "export ARCHTUNE_CHROMIUM=$(command -v chromium)"
