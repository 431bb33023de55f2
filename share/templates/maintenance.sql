-- Fixture for {{name}}: the schema and rows `runbook run {{name}} --sandbox` starts from.
create table sessions (
  id         bigserial primary key,
  account_id bigint not null,
  expires_at timestamptz not null
);
insert into sessions (account_id, expires_at)
select n % 10, now() - make_interval(days => n) from generate_series(1, 90) as n;
