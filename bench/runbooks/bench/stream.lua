-- Walks N rows through ctx.db:rows (bench/stream_rows.sh measures the peak RSS).
runbook "bench.stream" {
  params = { rows = { type = "integer", default = 10000000 } },
  step "walk" {
    run = function(ctx)
      local n, sum = 0, 0
      for row in ctx.db:rows("SELECT g, md5(g::text) AS h FROM generate_series(1, $1) g", ctx.params.rows) do
        n = n + 1
        sum = sum + row.g
      end
      check(n == ctx.params.rows, "walked %d of %d rows", n, ctx.params.rows)
      return { rows = n }
    end,
  },
}
