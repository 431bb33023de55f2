// stdlib/fingerprint.lua against a real PostgreSQL: stable digests (twice, and across creation
// orders and databases), every kind of change named in words, a migration whose rollback
// restores the database exactly (and one whose rollback leaves an index behind), inside a
// transactional phase, and names that need quoting.
#include <gtest/gtest.h>

#include <sstream>

#include "bindings/loader.hpp"
#include "bindings/open_all.hpp"
#include "engine/db/connection.hpp"
#include "engine/run/executor.hpp"
#include "tests/support/pg_fixture.hpp"
#include "tests/support/runbook_test.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using namespace rb;
using nlohmann::json;
using strings = std::vector<std::string>;

/// The schema most tests start from: a small chat application, with a row or three of each.
constexpr const char* k_app_schema = R"sql(
  create type mood as enum ('sad', 'ok');
  create table users (id serial primary key, email text not null, mood mood default 'ok',
                      constraint users_email_check check (email like '%@%'));
  create table conversations (id serial primary key, user_id int references users (id), tenant text);
  create table messages (id serial primary key, conversation_id int references conversations (id),
                         body text, created_at timestamptz default '2026-01-01 00:00:00+00');
  create index idx_messages_conversation_created on messages (conversation_id, created_at);
  alter table conversations enable row level security;
  create policy tenant_select on conversations for select using (tenant = current_user);
  create function fill_body() returns trigger language plpgsql as $$
    begin new.body := coalesce(new.body, ''); return new; end $$;
  create trigger fill_body_messages before insert on messages for each row execute function fill_body();
  create function acquire_sync_lock(owner text, resource text) returns boolean language sql as $$ select true $$;
  create view active_users as select id from users where mood = 'ok';
  insert into users (email) values ('a@x'), ('b@x'), ('c@x');
  insert into conversations (user_id, tenant) values (1, 't1'), (2, 't2');
  insert into messages (conversation_id, body) values (1, 'hi'), (1, 'there'), (2, null);
)sql";

/// Fingerprints before and after `change` (SQL run by the step) and logs the diff.
constexpr const char* k_diff_runbook = R"lua(local fingerprint = require "fingerprint"
runbook "t" { params = { change = { type = "string" } }, step "s" { run = function(ctx)
  local a = fingerprint.take(ctx.db)
  ctx.db:script(ctx.params.change)
  local b = fingerprint.take(ctx.db)
  for _, line in ipairs(fingerprint.diff(a, b)) do ctx.log(line) end
  audit.note("fingerprints", { equal = fingerprint.equal(a, b), before = a.digest, after = b.digest })
end } })lua";

/// A fresh database, and runbooks run against it (tests/support/runbook_test.hpp).
class Fingerprint : public rb::testing::RunbookTest {
 protected:
  void SetUp() override { dsn = rb::testing::fresh_database("fingerprint_test"); }

  /// Several statements of plain SQL on a database, outside any run.
  static void sql_on(const std::string& target, const std::string& text) {
    db::connection c({target, "test", "test"});
    c.script(text);
  }
  void sql(const std::string& text) { sql_on(dsn, text); }

  /// The app schema, then `change`: the diff the fingerprints see, after checking that the
  /// digests agree with it.
  strings diff_after(const std::string& change) {
    sql(k_app_schema);
    auto o = run(k_diff_runbook, {{"change", change}});
    EXPECT_EQ(o.status, "succeeded") << (o.error ? o.error->describe() : "");
    auto notes = records("note");
    EXPECT_EQ(notes.size(), 1u);
    if (notes.size() == 1) {
      const json& f = notes[0]["fields"];
      EXPECT_EQ(f["equal"], f["before"] == f["after"]);
      EXPECT_EQ(f["equal"], logged().empty());
    }
    return logged();
  }
};

/// Fingerprints cover the cluster's roles, which every test of a shared server would see appear:
/// the tests that create roles have a server of their own (tests/support/pg_fixture.hpp).
class FingerprintOfRoles : public Fingerprint {
 protected:
  void SetUp() override { dsn = rb::testing::fresh_database(rb::testing::private_cluster(), "fingerprint_roles"); }
};

TEST_F(Fingerprint, TheSameStateGivesTheSameDigestTwiceAndAnEmptyDiff) {
  sql(k_app_schema);
  auto o = run(R"lua(local fingerprint = require "fingerprint"
  runbook "t" { step "s" { run = function(ctx)
    local a, b = fingerprint.take(ctx.db), fingerprint.take(ctx.db)
    ctx.log(#a.digest, tostring(a.digest == b.digest), tostring(fingerprint.equal(a, b)), #fingerprint.diff(a, b))
    local t = a.schemas.public.tables
    ctx.log(t.users.rows, #t.users.hash, t.users.columns[2].name, t.users.columns[2].type, tostring(t.users.columns[2].not_null))
    ctx.log(a.schemas.public.sequences.users_id_seq.last_value, #a.schemas.public.enums.mood.labels,
            a.schemas.public.indexes.idx_messages_conversation_created.table)
    -- without data: no row counts, hashes or sequence positions, so new rows change nothing
    local s1 = fingerprint.take(ctx.db, { data = false })
    ctx.db:exec("insert into users (email) values ('d@x')")
    local s2 = fingerprint.take(ctx.db, { data = false })
    ctx.log(tostring(s1.schemas.public.tables.users.rows), tostring(s1.schemas.public.sequences.users_id_seq.last_value),
            tostring(fingerprint.equal(s1, s2)), tostring(s1.digest ~= a.digest))
  end } })lua");
  ASSERT_EQ(o.status, "succeeded") << (o.error ? o.error->describe() : "");
  EXPECT_EQ(logged(), (strings{"64 true true 0", "3 32 email text true", "3 2 messages", "nil nil true true"}));
}

TEST_F(Fingerprint, EqualSchemasBuiltInADifferentOrderGiveTheSameDigest) {
  // The same tables, columns, constraints, indexes, functions and rows, created in another
  // order, with a dropped column in between (other attnums) and rows inserted in another order
  // (another physical order): the same digest. A third database differs only in column order.
  sql(R"sql(
    create type mood as enum ('sad', 'ok');
    create table a (id int primary key, name text not null, m mood);
    create table b (id int primary key, a_id int references a (id));
    create index b_a_idx on b (a_id);
    create unique index a_name_idx on a (name);
    create function f(x int) returns int language sql as 'select x + 1';
    create function g() returns int language sql as 'select 2';
    create sequence s;
    select setval('s', 7);
    insert into a values (1, 'one', 'ok'), (2, 'two', null), (3, 'three', 'sad');
    insert into b values (10, 1), (11, 1), (12, null);
  )sql");
  std::string same = rb::testing::fresh_database("fingerprint_same");
  sql_on(same, R"sql(
    create function g() returns int language sql as 'select 2';
    create sequence s;
    create type mood as enum ('sad', 'ok');
    create table a (id int primary key, scratch int, name text not null, m mood);
    alter table a drop column scratch;
    insert into a values (3, 'three', 'sad'), (1, 'one', 'ok');
    create unique index a_name_idx on a (name);
    create function f(x int) returns int language sql as 'select x + 1';
    create table b (id int primary key, a_id int references a (id));
    insert into b values (12, null), (11, 1);
    insert into a values (2, 'two', null);
    insert into b values (10, 1);
    create index b_a_idx on b (a_id);
    select nextval('s') from generate_series(1, 7);
  )sql");
  std::string reordered = rb::testing::fresh_database("fingerprint_reordered");
  sql_on(reordered, R"sql(
    create type mood as enum ('sad', 'ok');
    create table a (id int primary key, m mood, name text not null);
    create table b (id int primary key, a_id int references a (id));
    create index b_a_idx on b (a_id);
    create unique index a_name_idx on a (name);
    create function f(x int) returns int language sql as 'select x + 1';
    create function g() returns int language sql as 'select 2';
    create sequence s;
    select setval('s', 7);
    insert into a values (1, 'ok', 'one'), (2, null, 'two'), (3, 'sad', 'three');
    insert into b values (10, 1), (11, 1), (12, null);
  )sql");
  auto o = run(R"lua(local fingerprint = require "fingerprint"
  runbook "t" { params = { same = { type = "string" }, reordered = { type = "string" } },
    step "s" { run = function(ctx)
      local here = fingerprint.take(ctx.db)
      local function of(dsn)
        local other = db.connect(dsn)
        local fp = fingerprint.take(other)
        other:close()
        return fp
      end
      local same, reordered = of(ctx.params.same), of(ctx.params.reordered)
      ctx.log("same", tostring(here.digest == same.digest), #fingerprint.diff(here, same))
      ctx.log("reordered", tostring(fingerprint.equal(here, reordered)))
      for _, line in ipairs(fingerprint.diff(here, reordered)) do ctx.log(line) end
    end } })lua",
               {{"same", same}, {"reordered", reordered}});
  ASSERT_EQ(o.status, "succeeded") << (o.error ? o.error->describe() : "");
  EXPECT_EQ(logged(), (strings{"same true 0", "reordered false", "table a: column order changed from (id, name, m) to (id, m, name)",
                               "table a: content changed (same row count)"}));
}

TEST_F(Fingerprint, RowsAddedAreCountedAndTheSequenceSeenAdvancing) {
  EXPECT_EQ(diff_after("insert into users (email) values ('d@x'), ('e@x'), ('f@x')"),
            (strings{"sequence users_id_seq: last_value changed from 3 to 6", "table users: 3 rows more"}));
}

TEST_F(Fingerprint, RowsDeletedAreCounted) {
  EXPECT_EQ(diff_after("delete from messages where id = 3"), (strings{"table messages: 1 row fewer"}));
}

TEST_F(Fingerprint, ContentChangedWithTheSameRowCountIsSeen) {
  EXPECT_EQ(diff_after("update users set email = 'z@x' where id = 2"),
            (strings{"table users: content changed (same row count)"}));
}

TEST_F(Fingerprint, ColumnsAddedAndRetypedAreNamed) {
  EXPECT_EQ(diff_after("alter table users add column version integer default 0;"
                       "alter table users alter column email type varchar(255)"),
            (strings{"column users.email type changed from text to character varying(255)", "column users.version added",
                     "constraint users_email_check on users changed from CHECK ((email ~~ '%@%'::text)) to "
                     "CHECK (((email)::text ~~ '%@%'::text))",
                     "table users: content changed (same row count)"}));
}

TEST_F(Fingerprint, ADroppedIndexIsMissing) {
  EXPECT_EQ(diff_after("drop index idx_messages_conversation_created"),
            (strings{"index idx_messages_conversation_created missing"}));
}

TEST_F(Fingerprint, AChangedConstraintShowsBothDefinitions) {
  EXPECT_EQ(diff_after("alter table users drop constraint users_email_check;"
                       "alter table users add constraint users_email_check check (length(email) > 2)"),
            (strings{"constraint users_email_check on users changed from CHECK ((email ~~ '%@%'::text)) to "
                     "CHECK ((length(email) > 2))"}));
}

TEST_F(Fingerprint, RowLevelSecurityPoliciesAndTheirSwitchAreSeen) {
  EXPECT_EQ(diff_after("alter policy tenant_select on conversations using (tenant = session_user);"
                       "alter table conversations force row level security"),
            (strings{"policy tenant_select on conversations changed (using)",
                     "table conversations: row level security forced"}));
}

TEST_F(Fingerprint, AFunctionWhoseBodyChangedIsNamedWithItsSignature) {
  EXPECT_EQ(diff_after("create or replace function acquire_sync_lock(owner text, resource text) returns boolean "
                       "language sql as $$ select false $$"),
            (strings{"function public.acquire_sync_lock(owner text, resource text) changed (definition)"}));
}

TEST_F(Fingerprint, ADroppedTriggerIsMissing) {
  EXPECT_EQ(diff_after("drop trigger fill_body_messages on messages"),
            (strings{"trigger fill_body_messages on messages missing"}));
}

TEST_F(Fingerprint, AViewWithAnotherDefinitionAndANewMaterializedViewAreSeen) {
  EXPECT_EQ(diff_after("create or replace view active_users as select id from users where mood = 'sad';"
                       "create materialized view user_count as select count(*) from users"),
            (strings{"materialized view user_count added", "view active_users changed (definition)"}));
}

TEST_F(Fingerprint, AnAdvancedSequenceAndANewEnumLabelAreSeen) {
  EXPECT_EQ(diff_after("select nextval('users_id_seq'); alter type mood add value 'happy'"),
            (strings{"enum mood: label happy added", "sequence users_id_seq: last_value changed from 3 to 4"}));
}

TEST_F(Fingerprint, ATableAddedOrDroppedIsOneLineWithoutItsIndexesConstraintsTriggersAndSequences) {
  EXPECT_EQ(diff_after("create table sync_state (id serial primary key, k text unique);"
                       "drop table messages"),
            (strings{"table messages missing", "table sync_state added"}));
}

TEST_F(Fingerprint, EverySchemaIsCoveredByDefaultAndASchemaAddedIsListedWithWhatIsInIt) {
  sql("create schema billing; create table billing.invoices (id int primary key, total numeric);");
  EXPECT_EQ(diff_after("insert into billing.invoices values (1, 9.5);"
                       "create schema audit; create table audit.log (id serial primary key, line text);"
                       "create view audit.recent as select * from audit.log;"
                       "create function audit.note(t text) returns void language sql as 'insert into audit.log (line) values (t)'"),
            (strings{"function audit.note(t text) added", "schema audit added", "table audit.log added",
                     "table billing.invoices: 1 row more", "view audit.recent added"}));
}

TEST_F(Fingerprint, SchemasNarrowsWhatIsCompared) {
  sql(k_app_schema);
  sql("create schema billing; create table billing.invoices (id int primary key)");
  auto o = run(R"lua(local fingerprint = require "fingerprint"
  runbook "t" { step "s" { run = function(ctx)
    local a = fingerprint.take(ctx.db, { schemas = { "billing" } })
    ctx.db:exec("insert into users (email) values ('d@x')")
    ctx.db:exec("create schema scratch")
    local b = fingerprint.take(ctx.db, { schemas = { "billing" } })
    ctx.log(tostring(fingerprint.equal(a, b)), tostring(a.schemas.public == nil), tostring(a.schemas.billing ~= nil))
  end } })lua");
  ASSERT_EQ(o.status, "succeeded") << (o.error ? o.error->describe() : "");
  EXPECT_EQ(logged(), (strings{"true true true"}));
}

TEST_F(FingerprintOfRoles, RolesTheirAttributesMembershipsAndSettingsAreSeen) {
  sql("create role fp_reader; create role fp_app login");
  EXPECT_EQ(diff_after("create role fp_extra; grant fp_reader to fp_app; alter role fp_app nologin connection limit 5;"
                       "alter role fp_reader set work_mem = '8MB'; comment on role fp_app is 'the application'"),
            (strings{"role fp_app: comment added: \"the application\"", "role fp_app: connection_limit changed from -1 to 5",
                     "role fp_app: granted membership in fp_reader", "role fp_app: login changed from true to false",
                     "role fp_extra added", "role fp_reader: setting work_mem=8MB added"}));
}

TEST_F(FingerprintOfRoles, GrantsOwnersAndCommentsOnEveryObjectAreSeen) {
  sql("create role fp_owner; create role fp_ro");
  EXPECT_EQ(diff_after("grant select on users to fp_ro; grant update (body) on messages to fp_ro with grant option;"
                       "alter table conversations owner to fp_owner; grant usage on schema public to fp_ro;"
                       "revoke execute on function acquire_sync_lock(text, text) from public;"
                       "comment on column users.email is 'how to reach them'; comment on table messages is 'chat';"
                       "alter default privileges grant select on tables to fp_ro"),
            (strings{"column messages.body: UPDATE WITH GRANT OPTION granted to fp_ro",
                     "column users.email: comment added: \"how to reach them\"",
                     "default acl for role postgres on tables: SELECT granted to fp_ro",
                     "function public.acquire_sync_lock(owner text, resource text): EXECUTE no longer granted to PUBLIC",
                     "schema public: USAGE granted to fp_ro",
                     "sequence conversations_id_seq: owner changed from postgres to fp_owner",
                     "table conversations: owner changed from postgres to fp_owner",
                     "table messages: comment added: \"chat\"", "table users: SELECT granted to fp_ro"}));
}

TEST_F(FingerprintOfRoles, AGrantUndoneByItsRevokeAndAnOwnerChangedBackCompareEqual) {
  sql("create role fp_undone");
  EXPECT_EQ(diff_after("grant select, insert on users to fp_undone; revoke select, insert on users from fp_undone;"
                       "alter table users owner to fp_undone; alter table users owner to postgres;"
                       "comment on table users is 'x'; comment on table users is null"),
            strings{});
}

TEST_F(Fingerprint, ExtensionsWithTheirVersionsAndSchemasAreSeen) {
  sql("create extension hstore version '1.7'; create extension citext; create schema ext");
  EXPECT_EQ(diff_after("alter extension hstore update to '1.8'; alter extension citext set schema ext;"
                       "create extension ltree"),
            (strings{"extension citext: schema changed from public to ext", "extension hstore: version changed from 1.7 to 1.8",
                     "extension ltree added"}));
}

TEST_F(Fingerprint, PublicationsRulesAndEventTriggersAreSeen) {
  sql("create table audit_log (id int primary key); create publication fp_pub for table audit_log;"
      "create function fp_ddl() returns event_trigger language plpgsql as $$ begin end $$;");
  EXPECT_EQ(diff_after("alter publication fp_pub add table messages (id, body) where (id > 0);"
                       "alter publication fp_pub set (publish = 'insert');"
                       "create rule no_delete as on delete to conversations do instead nothing;"
                       "create event trigger fp_on_ddl on ddl_command_end execute function fp_ddl()"),
            (strings{"event trigger fp_on_ddl added", "publication fp_pub: publish changed from insert, update, delete, truncate to insert",
                     "publication fp_pub: table public.messages (id, body) WHERE (id > 0) added", "rule no_delete on conversations added"}));
}

TEST_F(Fingerprint, ColumnDefaultsGeneratedColumnsAndSequenceOwnershipAreSeen) {
  sql("create table shapes (w int, h int, area int generated always as (w * h) stored)");
  EXPECT_EQ(diff_after("alter table users alter column mood set default 'sad';"
                       "alter table shapes alter column area drop expression;"
                       "alter table messages add column body_length int generated always as (length(body)) stored;"
                       "alter sequence users_id_seq owned by none"),
            (strings{"column messages.body_length added", "column shapes.area generated changed from (w * h) to (none)",
                     "column users.mood default changed from 'ok'::public.mood to 'sad'::public.mood",
                     "sequence users_id_seq: owned_by changed from (public, users, id) to (none)",
                     "table messages: content changed (same row count)"}));
}

/// A migration rehearsed by the engine: the baseline step's rollback, which runs last, compares
/// the database with the fingerprint taken before anything ran.
constexpr const char* k_rehearsal = R"lua(local fingerprint = require "fingerprint"
local before
runbook "t" {
  params = { leave_index = { type = "boolean", default = false } },
  phase "baseline" {
    step "fingerprint" {
      run = function(ctx) before = fingerprint.take(ctx.db) end,
      rollback = function(ctx)
        local after = fingerprint.take(ctx.db)
        ctx.log("restored", tostring(fingerprint.equal(before, after)))
        for _, line in ipairs(fingerprint.diff(before, after)) do ctx.log(line) end
      end,
    },
  },
  phase "migrate" { transaction = true,
    step "schema" {
      run = function(ctx) ctx.db:script([[
        create type sync_status as enum ('pending', 'done');
        create table sync_state (id serial primary key, status sync_status not null default 'pending');
        alter table users add column version integer not null default 0;
        create index idx_users_email on users (email);
        alter table users drop constraint users_email_check;
        alter table users add constraint users_email_check check (length(email) > 2);
        create policy tenant_insert on conversations for insert with check (tenant = current_user);
        create or replace function acquire_sync_lock(owner text, resource text) returns boolean language sql as $$ select false $$;
        drop trigger fill_body_messages on messages;
        create or replace view active_users as select id, version from users where mood = 'ok';
        create materialized view user_count as select count(*) from users;
      ]]) end,
      rollback = function(ctx)
        ctx.db:script([[
          drop materialized view user_count;
          drop view active_users;
          create view active_users as select id from users where mood = 'ok';
          create trigger fill_body_messages before insert on messages for each row execute function fill_body();
          create or replace function acquire_sync_lock(owner text, resource text) returns boolean language sql as $$ select true $$;
          drop policy tenant_insert on conversations;
          alter table users drop constraint users_email_check;
          alter table users add constraint users_email_check check (email like '%@%');
          alter table users drop column version;
          drop table sync_state;
          drop type sync_status;
        ]])
        if not ctx.params.leave_index then ctx.db:exec("drop index idx_users_email") end
      end,
    },
    step "data" {
      run = function(ctx)
        ctx.db:exec("insert into users (email) values ('d@x'), ('e@x')")
        ctx.db:exec("update messages set body = 'edited' where id = 1")
      end,
      rollback = function(ctx)
        ctx.db:exec("delete from users where email in ('d@x', 'e@x')")
        ctx.db:exec("update messages set body = 'hi' where id = 1")
        ctx.db:exec("select setval('users_id_seq', 3)")
      end,
    },
  },
  phase "verify" { step "fails" { run = function() error("the new code path is broken") end } },
})lua";

TEST_F(Fingerprint, AMigrationFollowedByItsExactReverseRestoresTheFingerprint) {
  sql(k_app_schema);
  auto o = run(k_rehearsal);
  EXPECT_EQ(o.status, "rolled_back") << (o.error ? o.error->describe() : "");
  EXPECT_EQ(records("rollback.end").size(), 3u);
  EXPECT_EQ(logged(), (strings{"restored true"}));
}

TEST_F(Fingerprint, AnIncompleteReverseShowsExactlyWhatItLeftBehind) {
  sql(k_app_schema);
  auto o = run(k_rehearsal, {{"leave_index", true}});
  EXPECT_EQ(o.status, "rolled_back") << (o.error ? o.error->describe() : "");
  EXPECT_EQ(logged(), (strings{"restored false", "index idx_users_email added"}));
}

TEST_F(Fingerprint, InsideATransactionalPhaseItSeesUncommittedWorkAndLeavesTheSessionAsItWas) {
  sql(k_app_schema);
  auto o = run(R"lua(local fingerprint = require "fingerprint"
  runbook "t" { phase "migrate" { transaction = true, step "s" { run = function(ctx)
    local path = ctx.db:scalar("select current_setting('search_path')")
    local a = fingerprint.take(ctx.db)
    ctx.db:exec("insert into users (email) values ('d@x')")
    local b = fingerprint.take(ctx.db)
    for _, line in ipairs(fingerprint.diff(a, b)) do ctx.log(line) end
    ctx.log(tostring(ctx.db:scalar("select current_setting('search_path')") == path),
            ctx.db:scalar("select current_setting('transaction_read_only')"))
  end } } })lua");
  ASSERT_EQ(o.status, "succeeded") << (o.error ? o.error->describe() : "");
  EXPECT_EQ(logged(), (strings{"sequence users_id_seq: last_value changed from 3 to 4", "table users: 1 row more", "true off"}));
  for (auto& r : records("sql")) EXPECT_FALSE(r.contains("sqlstate") && !r["sqlstate"].is_null()) << r.dump();
}

TEST_F(Fingerprint, NamesThatNeedQuotingWorkAndSchemaNamesAreData) {
  sql(R"sql(
    create table "Weird Name" ("Mixed Col" int primary key, "select" text);
    insert into "Weird Name" values (1, 'a');
    create schema "Odd Schema";
    create table "Odd Schema".t (id int);
  )sql");
  auto o = run(R"lua(local fingerprint = require "fingerprint"
  runbook "t" { step "s" { run = function(ctx)
    local opts = { schemas = { "public", "Odd Schema", "x'); drop table \"Weird Name\"; --" } }
    local a = fingerprint.take(ctx.db, opts)
    ctx.db:script([[
      insert into "Weird Name" values (2, 'b');
      alter table "Weird Name" add column "Another Col" int;
      create index "Weird idx" on "Weird Name" ("select");
      insert into "Odd Schema".t values (1);
    ]])
    local b = fingerprint.take(ctx.db, opts)
    for _, line in ipairs(fingerprint.diff(a, b)) do ctx.log(line) end
    ctx.log(a.schemas["Odd Schema"] ~= nil, b.schemas["x'); drop table \"Weird Name\"; --"] == nil)
  end } })lua");
  ASSERT_EQ(o.status, "succeeded") << (o.error ? o.error->describe() : "");
  EXPECT_EQ(logged(), (strings{"column \"Weird Name\".\"Another Col\" added", "index \"Weird idx\" added",
                               "table \"Odd Schema\".t: 1 row more", "table \"Weird Name\": 1 row more", "true true"}));
}

}  // namespace
