-- Fixture for {{name}}: the schema and rows `runbook run {{name}} --sandbox` starts from.
create table jobs (
  id         bigserial primary key,
  state      text not null default 'queued',
  created_at timestamptz not null default now()
);
insert into jobs (state) values ('queued'), ('queued'), ('done');
