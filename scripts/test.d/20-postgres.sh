# Sourced by scripts/test.sh: starts a throw-away PostgreSQL server on 127.0.0.1 for the facepay-server tests and
# exports FACEPAY_TEST_DATABASE_URL. Installs Debian's postgresql package when no initdb/pg_ctl is found.
# Skipped when FACEPAY_TEST_DATABASE_URL is already set (e.g. pointing at your own server).

facepay_pg_bin() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
    echo "$dir"
  fi
}

facepay_pg_start() {
  local bin dir port run_as
  bin="$(facepay_pg_bin)"
  if [ -z "$bin" ]; then
    echo "20-postgres: PostgreSQL not found; installing Debian's postgresql package" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    bin="$(facepay_pg_bin)"
  fi
  if [ -z "$bin" ]; then
    echo "20-postgres: no initdb/pg_ctl under /usr/lib/postgresql/*/bin after installing" >&2
    return 1
  fi

  dir="$(mktemp -d /tmp/facepay-pg.XXXXXX)"
  run_as=()
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$dir"
    run_as=(runuser -u postgres --)
  fi
  # A free port: the first one in the range nobody answers on.
  port=""
  for p in $(seq 55432 55532); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      port="$p"
      break
    fi
  done
  if [ -z "$port" ]; then
    echo "20-postgres: no free port in 55432..55532" >&2
    return 1
  fi

  "${run_as[@]}" "$bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2
    return 1
  }
  # fsync off: a throw-away test cluster (the server's own durability is tested on SQLite and by design).
  # FACEPAY_PG_FSYNC=on gives production durability (scripts/bench-server.sh).
  "${run_as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=${FACEPAY_PG_FSYNC:-off} -c max_connections=200" \
    start >&2 || {
    cat "$dir/server.log" >&2
    return 1
  }
  FACEPAY_PG_DIR="$dir"
  FACEPAY_PG_CTL=("${run_as[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast -w stop)
  export FACEPAY_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "20-postgres: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($dir)" >&2
}

facepay_pg_stop() {
  if [ -n "${FACEPAY_PG_DIR:-}" ]; then
    "${FACEPAY_PG_CTL[@]}" >/dev/null 2>&1 || true
    rm -rf "$FACEPAY_PG_DIR"
    FACEPAY_PG_DIR=""
  fi
}

if [ -z "${FACEPAY_TEST_DATABASE_URL:-}" ]; then
  facepay_pg_start
  facepay_pg_previous_exit_trap="$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\1/")"
  # shellcheck disable=SC2064
  trap "facepay_pg_stop; ${facepay_pg_previous_exit_trap}" EXIT
fi
