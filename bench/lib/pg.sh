# Sourced by bench scripts: start a throwaway PostgreSQL 15 in a temp dir (unix socket only),
# export PGHOST/PGPORT/PGUSER/PGDATABASE and BENCH_DSN, and stop it on exit.
pg_bin=${RUNBOOK_PG_BIN:-/usr/lib/postgresql/15/bin}
bench_pg_dir=$(mktemp -d /tmp/runbook-bench-pg-XXXXXX)
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" -eq 0 ] && chown postgres "$bench_pg_dir"
as_pg "$pg_bin/initdb" -D "$bench_pg_dir/data" -U postgres -A trust --no-sync >/dev/null
as_pg "$pg_bin/pg_ctl" -D "$bench_pg_dir/data" -l "$bench_pg_dir/server.log" -w \
  -o "-c listen_addresses='' -c unix_socket_directories=$bench_pg_dir -c port=5432 -c fsync=off -c synchronous_commit=off" \
  start >/dev/null
trap 'as_pg "$pg_bin/pg_ctl" -D "$bench_pg_dir/data" -m immediate stop >/dev/null 2>&1; rm -rf "$bench_pg_dir"; ${bench_cleanup:-true}' EXIT
export PGHOST="$bench_pg_dir" PGPORT=5432 PGUSER=postgres PGDATABASE=postgres
export BENCH_DSN="host=$bench_pg_dir port=5432 user=postgres dbname=postgres"
