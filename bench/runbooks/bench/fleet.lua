-- One target's share of a fleet run (bench/fleet.sh): a small maintenance job, database-bound.
runbook "bench.fleet" {
  params = {
    rows  = { type = "integer", default = 200000, doc = "rows to load, index and analyze" },
    sleep = { type = "number", default = 0, doc = "seconds of waiting (pg_sleep) on top: I/O-like time" },
  },
  step "reset" { run = function(ctx) ctx.db:exec("drop table if exists bench_fleet") end },
  step "load" {
    run = function(ctx)
      ctx.db:exec("create table bench_fleet (id int, note text)")
      ctx.db:exec("insert into bench_fleet select g, md5(g::text) from generate_series(1, $1) g", ctx.params.rows)
    end,
    rollback = function(ctx) ctx.db:exec("drop table if exists bench_fleet") end,
  },
  step "index" { run = function(ctx) ctx.db:exec("create index on bench_fleet (note)") end },
  step "analyze" { run = function(ctx) ctx.db:exec("vacuum analyze bench_fleet") end },
  step "wait" {
    when = function(ctx) return ctx.params.sleep > 0 end,
    run = function(ctx) ctx.db:exec("select pg_sleep($1)", ctx.params.sleep) end,
  },
}
