-- The smallest useful runbook: one step, for measuring start-to-exit time.
runbook "bench.one_step" {
  step "only" { run = function(ctx) return 1 end },
}
