#!/usr/bin/env bash
# Start or stop a private PostgreSQL 15 for tests and benchmarks.
# PostgreSQL refuses to run as root, so the cluster belongs to the `postgres` user and lives
# outside /root. Usage: scripts/pg.sh start|stop|url   (port: $OMS_PG_PORT, default 54329)
set -euo pipefail
BIN=/usr/lib/postgresql/15/bin
PORT=${OMS_PG_PORT:-54329}
DIR=${OMS_PG_DIR:-/tmp/oms-pg-$PORT}
RUNAS=()
[ "$(id -u)" = 0 ] && RUNAS=(runuser -u postgres --)
url() { echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/oms_test"; }
case "${1:-}" in
  start)
    if [ ! -s "$DIR/PG_VERSION" ]; then
      mkdir -p "$DIR"; [ "$(id -u)" = 0 ] && chown postgres "$DIR"
      "${RUNAS[@]}" "$BIN/initdb" -D "$DIR" -U postgres -A trust -E UTF8 --no-locale >/dev/null
    fi
    if ! "${RUNAS[@]}" "$BIN/pg_ctl" -D "$DIR" status >/dev/null 2>&1; then
      "${RUNAS[@]}" "$BIN/pg_ctl" -D "$DIR" -l "$DIR/server.log" -w -t 30 start \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=off -c full_page_writes=off \
            -c synchronous_commit=off -c max_connections=200 -c shared_buffers=256MB" >/dev/null
    fi
    "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='oms_test'" \
      | grep -q 1 || "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres oms_test
    url ;;
  stop)
    "${RUNAS[@]}" "$BIN/pg_ctl" -D "$DIR" -m fast -w stop >/dev/null 2>&1 || true ;;
  url) url ;;
  *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
