-- Fixture for {{name}}: the schema and rows `runbook run {{name}} --sandbox` starts from.
create table jobs (
  id        bigserial primary key,
  kind      text not null,
  state     text not null default 'queued',
  locked_at timestamptz
);
insert into jobs (kind, state, locked_at) values
  ('email', 'queued', null),
  ('email', 'running', now() - interval '2 hours'),
  ('report', 'running', now() - interval '1 minute'),
  ('report', 'done', null);
