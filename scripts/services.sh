#!/usr/bin/env bash
# Install and start what the tests need from Debian packages: a PostgreSQL server (for
# multi-process search), headless Chromium (for report and web-page tests) and g++ (torch.compile).
# Prints the environment variables the tests read; use: eval "$(bash scripts/services.sh)"
# Exits non-zero (with one line on stderr) when either cannot be set up: it never prints an
# empty variable.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"   # -n: fail rather than wait for a password
die() { echo "scripts/services.sh: $*" >&2; exit 1; }
find_chromium() { command -v chromium || command -v chromium-browser || true; }
need=""
[ -n "$(find_chromium)" ] || need="$need chromium fonts-dejavu-core"
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need="$need postgresql"
command -v g++ >/dev/null || need="$need g++"   # torch.compile's C++ compiler (a test needs it)
if [ -n "$need" ]; then
  $SUDO apt-get update -qq >&2 || die "apt-get update failed (needed:$need)"
  $SUDO apt-get install -y -qq $need >&2 || die "apt-get install$need failed"
fi
CHROMIUM=$(find_chromium)
[ -n "$CHROMIUM" ] || die "no chromium (or chromium-browser) on PATH after installing it"
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
[ -n "$PGBIN" ] || die "no PostgreSQL in /usr/lib/postgresql after installing it"
PGDATA=${ARCHTUNE_PGDATA:-/tmp/archtune-pg}
PGPORT=${ARCHTUNE_PGPORT:-54329}
RUN=""; [ "$(id -u)" -eq 0 ] && RUN="runuser -u postgres --"   # pg_ctl refuses to run as root
if ! "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT"; then  # reuse a server already listening
  rm -rf "$PGDATA"; mkdir -p "$PGDATA"
  [ -z "$RUN" ] || chown postgres "$PGDATA"
  $RUN "$PGBIN/initdb" -D "$PGDATA" -A trust -U archtune >&2 || die "initdb failed"
  $RUN "$PGBIN/pg_ctl" -D "$PGDATA" -o "-p $PGPORT -k /tmp -c listen_addresses=127.0.0.1" \
    -l "$PGDATA/log" -w -t 180 start >&2 || die "PostgreSQL did not start (see $PGDATA/log)"
fi
"$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT" || die "PostgreSQL is not accepting connections on port $PGPORT"
echo "export ARCHTUNE_TEST_PG_URL=postgresql://archtune@127.0.0.1:$PGPORT/postgres"
echo "export ARCHTUNE_CHROMIUM=$CHROMIUM"
