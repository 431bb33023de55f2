-- A first runbook: no database needed. Shows params, phases, verify, retry and rollback.
runbook "demo.hello" {
  title = "Greet someone, with a retry and a verified result",
  description = "The smallest tour of the runbook language; run it with --param who=NAME.",
  tags = { "demo" },
  params = {
    who = { type = "string", default = "world", doc = "whom to greet" },
    attempts_needed = { type = "integer", default = 2, doc = "the greeting 'fails' until this attempt" },
  },

  phase "prepare" {
    step "compose greeting" {
      run = function(ctx)
        return { text = "hello, " .. ctx.params.who }
      end,
      verify = function(ctx, result)
        check(result.text:find(ctx.params.who, 1, true), "greeting lost the name %q", ctx.params.who)
      end,
    },
  },

  phase "deliver" {
    step "say it" {
      retry = { attempts = 3, backoff = "exponential", initial = "50ms" },
      run = function(ctx)
        if ctx.attempt < ctx.params.attempts_needed then
          error("the greeting service is busy (attempt " .. ctx.attempt .. ")")
        end
        ctx.log("hello, " .. ctx.params.who)
        audit.note("greeted", { who = ctx.params.who, attempt = ctx.attempt })
      end,
      rollback = function(ctx)
        ctx.log("taking the greeting back")
      end,
    },
  },
}
