-- 10,000 single-row INSERTs from one step, in one transaction (bench/db_inserts.sh).
runbook "bench.inserts" {
  params = { rows = { type = "integer", default = 10000 } },
  phase "load" {
    transaction = true,
    step "insert rows" {
      run = function(ctx)
        for i = 1, ctx.params.rows do
          ctx.db:exec("INSERT INTO bench_rb (id, note) VALUES ($1, $2)", i, "row")
        end
      end,
    },
  },
}
