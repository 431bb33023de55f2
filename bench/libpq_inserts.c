/* The baseline for bench/db_inserts.sh: N single-row INSERTs through a prepared statement in
   one transaction, the least a client can do over libpq. Usage: libpq_inserts DSN N */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>

static void must(PGresult *r, ExecStatusType want, PGconn *c) {
  if (PQresultStatus(r) != want) { fprintf(stderr, "%s", PQerrorMessage(c)); exit(1); }
  PQclear(r);
}

int main(int argc, char **argv) {
  PGconn *c = PQconnectdb(argv[1]);
  if (PQstatus(c) != CONNECTION_OK) { fprintf(stderr, "%s", PQerrorMessage(c)); return 1; }
  int n = atoi(argv[2]);
  must(PQexec(c, "BEGIN"), PGRES_COMMAND_OK, c);
  must(PQprepare(c, "ins", "INSERT INTO bench_c (id, note) VALUES ($1, $2)", 2, NULL), PGRES_COMMAND_OK, c);
  char id[32];
  for (int i = 1; i <= n; ++i) {
    snprintf(id, sizeof id, "%d", i);
    const char *values[2] = {id, "row"};
    must(PQexecPrepared(c, "ins", 2, values, NULL, NULL, 0), PGRES_COMMAND_OK, c);
  }
  must(PQexec(c, "COMMIT"), PGRES_COMMAND_OK, c);
  PQfinish(c);
  return 0;
}
