#!/usr/bin/env bash
# Run a command with TEST_DATABASE_URL pointing at a fresh PostgreSQL database:
#  1. TEST_DATABASE_URL when already set (used as is);
#  2. else the server on 127.0.0.1:5432 when one answers: a new database, dropped after;
#  3. else a throwaway cluster on loopback (PostgreSQL installed with apt when missing),
#     stopped and removed after.
set -euo pipefail

if [ -n "${TEST_DATABASE_URL:-}" ]; then
  exec "$@"
fi

PGHOST_LOCAL=127.0.0.1
PGPORT_LOCAL=${PG_PROBE_PORT:-5432}  # overridable to exercise the fallback
DBNAME="mnc_test_$$_$(date +%s)"
cleanup_cmds=()
cleanup() { for c in "${cleanup_cmds[@]}"; do eval "$c" || true; done; }
trap cleanup EXIT

pg_answers() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

if pg_answers "$PGHOST_LOCAL" "$PGPORT_LOCAL" && command -v psql >/dev/null \
   && psql -h "$PGHOST_LOCAL" -p "$PGPORT_LOCAL" -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; then
  echo "using the PostgreSQL server on $PGHOST_LOCAL:$PGPORT_LOCAL (database $DBNAME)"
  psql -h "$PGHOST_LOCAL" -p "$PGPORT_LOCAL" -U postgres -d postgres -qc "CREATE DATABASE $DBNAME"
  cleanup_cmds+=("psql -h $PGHOST_LOCAL -p $PGPORT_LOCAL -U postgres -d postgres -qc 'DROP DATABASE IF EXISTS $DBNAME WITH (FORCE)'")
  export TEST_DATABASE_URL="postgresql+psycopg://postgres@$PGHOST_LOCAL:$PGPORT_LOCAL/$DBNAME"
else
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "installing PostgreSQL with apt"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
  fi
  BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  PORT=55432
  while pg_answers 127.0.0.1 "$PORT"; do PORT=$((PORT + 1)); done
  DATA=$(mktemp -d /tmp/mnc-pg.XXXXXX)
  RUN_AS=()
  if [ "$(id -u)" = 0 ]; then chown postgres: "$DATA"; RUN_AS=(runuser -u postgres --); fi
  echo "starting a throwaway PostgreSQL on 127.0.0.1:$PORT"
  "${RUN_AS[@]}" "$BIN/initdb" -D "$DATA/data" -U postgres -A trust -E UTF8 >/dev/null
  "${RUN_AS[@]}" "$BIN/pg_ctl" -D "$DATA/data" -o "-h 127.0.0.1 -p $PORT -k $DATA" -l "$DATA/log" -w start >/dev/null
  cleanup_cmds+=("${RUN_AS[*]} $BIN/pg_ctl -D $DATA/data -m immediate stop >/dev/null; rm -rf $DATA")
  "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -qc "CREATE DATABASE $DBNAME"
  export TEST_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:$PORT/$DBNAME"
fi

"$@"
