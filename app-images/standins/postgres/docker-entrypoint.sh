#!/usr/bin/env bash
# Entrypoint of tt-standin/postgres:<major> (15, 17). Follows the official postgres image's contract:
#  - PGDATA (default /var/lib/postgresql/data) without PG_VERSION: initdb with POSTGRES_USER
#    (default postgres) / POSTGRES_PASSWORD (scram-sha-256), create POSTGRES_DB (default = user),
#    run /docker-entrypoint-initdb.d/*.sh|*.sql|*.sql.gz, listen_addresses='*'.
#  - PGDATA with an existing database: every POSTGRES_* variable is ignored.
#  - started as root: fixes ownership of PGDATA, then re-execs itself as user postgres (setpriv).
#  - the server is exec'd, so postgres is PID 1 and gets the stop signal directly.
# X_FILE variants (POSTGRES_PASSWORD_FILE, ...) are honoured like in the official image.
set -Eeo pipefail

log() { printf '%s [entrypoint] %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$*"; }

file_env() { # VAR [default]: VAR or the content of the file named by VAR_FILE
  local var=$1 fileVar="${1}_FILE" def=${2:-} val
  if [ -n "${!var:-}" ] && [ -n "${!fileVar:-}" ]; then
    log "error: both $var and $fileVar are set (but are exclusive)" >&2
    exit 1
  fi
  val=$def
  if [ -n "${!var:-}" ]; then
    val=${!var}
  elif [ -n "${!fileVar:-}" ]; then
    val=$(<"${!fileVar}")
  fi
  export "$var"="$val"
  unset "$fileVar"
}

setup_env() {
  file_env POSTGRES_PASSWORD
  file_env POSTGRES_USER postgres
  file_env POSTGRES_DB "$POSTGRES_USER"
  file_env POSTGRES_INITDB_ARGS
  : "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
  export PGDATA=${PGDATA:-/var/lib/postgresql/data}
  DATABASE_ALREADY_EXISTS=
  if [ -s "$PGDATA/PG_VERSION" ]; then DATABASE_ALREADY_EXISTS=true; fi
}

create_db_directories() {
  mkdir -p "$PGDATA"
  chmod 00700 "$PGDATA" || :
  mkdir -p /var/run/postgresql || :
  chmod 03775 /var/run/postgresql || :
  if [ "$(id -u)" = 0 ]; then
    # e.g. a fresh volume owned by root
    find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
    find /var/run/postgresql \! -user postgres -exec chown postgres:postgres '{}' +
  fi
}

verify_minimum_env() {
  if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
    cat >&2 <<'MSG'
Error: Database is uninitialized and superuser password is not specified.
       You must specify POSTGRES_PASSWORD to a non-empty value for the
       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".
       (or set POSTGRES_HOST_AUTH_METHOD=trust to allow all connections without a password)
MSG
    exit 1
  fi
}

init_database_dir() {
  local args=(--username="$POSTGRES_USER" --auth-local=trust --auth-host="$POSTGRES_HOST_AUTH_METHOD")
  # POSTGRES_INITDB_ARGS is word-split on purpose (e.g. "--data-checksums --locale=C")
  # shellcheck disable=SC2086
  if [ -n "$POSTGRES_PASSWORD" ]; then
    # the password reaches initdb through a pipe, never through argv or a file
    initdb "${args[@]}" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") $POSTGRES_INITDB_ARGS
  else
    initdb "${args[@]}" $POSTGRES_INITDB_ARGS
  fi
}

setup_config() {
  # every client over TCP must present a password (scram-sha-256); unix socket is trusted
  {
    echo
    echo "# added by tt-standin entrypoint"
    echo "host all all all $POSTGRES_HOST_AUTH_METHOD"
  } >>"$PGDATA/pg_hba.conf"
  {
    echo
    echo "# added by tt-standin entrypoint"
    echo "listen_addresses = '*'"
    echo "password_encryption = 'scram-sha-256'"
  } >>"$PGDATA/postgresql.conf"
}

process_sql() {
  local query_runner=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
  if [ -n "$POSTGRES_DB" ]; then query_runner+=(--dbname "$POSTGRES_DB"); fi
  PGHOST= PGHOSTADDR= "${query_runner[@]}" "$@"
}

temp_server_start() {
  # unix socket only while initialising, so nobody can connect before init is complete
  PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p ${PGPORT:-5432}" -w start
}

temp_server_stop() {
  PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -m fast -w stop
}

setup_db() {
  local exists
  exists=$(POSTGRES_DB= process_sql --dbname postgres --set db="$POSTGRES_DB" --tuples-only <<-'SQL'
	SELECT 1 FROM pg_database WHERE datname = :'db' ;
	SQL
  )
  if [ -z "$exists" ]; then
    POSTGRES_DB= process_sql --dbname postgres --set db="$POSTGRES_DB" <<-'SQL'
	CREATE DATABASE :"db" ;
	SQL
    log "created database $POSTGRES_DB"
  fi
}

process_init_files() {
  local f
  for f in /docker-entrypoint-initdb.d/*; do
    [ -e "$f" ] || continue
    case "$f" in
      *.sh)
        if [ -x "$f" ]; then log "running $f"; "$f"; else log "sourcing $f"; . "$f"; fi ;;
      *.sql) log "running $f"; process_sql -f "$f" ;;
      *.sql.gz) log "running $f"; gunzip -c "$f" | process_sql ;;
      *) log "ignoring $f" ;;
    esac
  done
}

want_help() {
  local arg
  for arg; do
    case "$arg" in -'?'|--help|--describe-config|-V|--version) return 0 ;; esac
  done
  return 1
}

main() {
  # "docker run image -c foo=bar" means "postgres -c foo=bar"
  if [ "${1:0:1}" = '-' ]; then set -- postgres "$@"; fi

  if [ "$1" = postgres ] && ! want_help "$@"; then
    setup_env
    create_db_directories
    if [ "$(id -u)" = 0 ]; then
      exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
    fi

    if [ -z "$DATABASE_ALREADY_EXISTS" ]; then
      verify_minimum_env
      log "initialising database in $PGDATA for user $POSTGRES_USER, database $POSTGRES_DB"
      init_database_dir
      setup_config
      export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
      temp_server_start
      setup_db
      process_init_files
      temp_server_stop
      unset PGPASSWORD
      log "PostgreSQL init process complete; ready for start up."
    else
      log "PostgreSQL Database directory appears to contain a database; Skipping initialization (POSTGRES_* ignored)"
    fi
  fi

  exec "$@"
}

main "$@"
