-- Fixture for {{name}}: the schema and rows `runbook run {{name}} --sandbox` starts from.
-- Keep it close to production's schema (pg_dump --schema-only) with a few made-up rows.
create table accounts (
  id         bigserial primary key,
  email      text not null unique,
  created_at timestamptz not null default now()
);
insert into accounts (email) values ('ada@example.com'), ('grace@example.com'), ('linus@example.com');
