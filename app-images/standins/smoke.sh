#!/usr/bin/env bash
# Smoke test of the stand-in images and the sample app (run build.sh first).
# Everything it creates is named tt-smoke-* and removed on exit; images are left alone.
set -euo pipefail

P=tt-smoke
NET=$P-net
PASS=0 FAIL=0
ok() { PASS=$((PASS + 1)); printf 'ok    %s\n' "$*"; }
bad() { FAIL=$((FAIL + 1)); printf 'FAIL  %s\n' "$*"; }
check() { # description command...
  local d=$1; shift
  if "$@" >/dev/null 2>&1; then ok "$d"; else bad "$d"; fi
}

TMP=$(mktemp -d /tmp/$P.XXXXXX)
cleanup() {
  docker rm -fv $P-pg $P-pg-bind $P-redis $P-redis-default $P-caddy $P-caddy-default $P-backend \
    $P-backend-nodb $P-frontend $P-nginx-default >/dev/null 2>&1 || true
  docker network rm $NET >/dev/null 2>&1 || true
  docker volume rm $P-pg $P-redis >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT
cleanup
TMP=$(mktemp -d /tmp/$P.XXXXXX)

wait_for() { # seconds command... ; true once the command succeeds
  local secs=$1 i; shift
  for i in $(seq 1 "$secs"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  return 1
}
# grep that reads all of its input: "grep -q" can exit early and, under pipefail, fail the
# pipeline with SIGPIPE in the writer
has() { grep "$@" >/dev/null; }
export -f has
health_is() { [ "$(docker inspect --format '{{.State.Health.Status}}' "$1")" = "$2" ]; }

docker network create $NET >/dev/null
docker volume create $P-pg >/dev/null
docker volume create $P-redis >/dev/null

# ------------------------------------------------------------------ postgres
echo "== postgres"
run_pg() { # password
  docker run -d --name $P-pg --network $NET -v $P-pg:/var/lib/postgresql/data \
    -e POSTGRES_USER=tt -e POSTGRES_PASSWORD="$1" -e POSTGRES_DB=timetracker tt-standin/postgres:15 >/dev/null
  wait_for 60 docker exec $P-pg pg_isready -h 127.0.0.1 -U tt -d timetracker
}
psql_as() { # password sql
  docker exec -e PGPASSWORD="$1" $P-pg psql -h 127.0.0.1 -U tt -d timetracker -tAc "$2"
}
check "initialises with POSTGRES_USER/PASSWORD/DB and pg_isready -h 127.0.0.1 answers" run_pg oldpass
check "psql -h 127.0.0.1 with PGPASSWORD (scram) works" psql_as oldpass 'select 1'
check "wrong password is refused over TCP" bash -c "! docker exec -e PGPASSWORD=nope $P-pg psql -h 127.0.0.1 -U tt -d timetracker -tAc 'select 1'"
[ "$(psql_as oldpass 'show password_encryption')" = scram-sha-256 ] && ok "password_encryption = scram-sha-256" || bad "password_encryption"
[ "$(docker exec $P-pg psql -U tt -d timetracker -tAc 'select current_user')" = tt ] && ok "unix socket is trusted" || bad "unix socket trust"
[ "$(docker exec $P-pg stat -c '%U %n' /proc/1) $(docker exec $P-pg cat /proc/1/comm)" = "postgres /proc/1 postgres" ] && ok "PID 1 is postgres, running as user postgres" || bad "postgres PID 1 user"
psql_as oldpass 'create table smoke(x int); insert into smoke values (42)' >/dev/null
docker stop -t 30 $P-pg >/dev/null
code=$(docker inspect --format '{{.State.ExitCode}}' $P-pg)
[ "$code" = 0 ] && docker logs $P-pg 2>&1 | has 'database system is shut down' &&
  ok "docker stop shuts down cleanly (exit 0)" || bad "clean shutdown (exit $code)"
docker rm $P-pg >/dev/null
check "restart on the same volume with a DIFFERENT POSTGRES_PASSWORD" run_pg newpass
check "  initialisation was skipped" bash -c "docker logs $P-pg 2>&1 | has 'Skipping initialization'"
[ "$(psql_as oldpass 'select x from smoke')" = 42 ] && ok "  OLD password still works, data kept" || bad "old password after restart"
check "  NEW password is refused (POSTGRES_* ignored on existing data)" bash -c "! docker exec -e PGPASSWORD=newpass $P-pg psql -h 127.0.0.1 -U tt -d timetracker -tAc 'select 1'"
docker kill -s TERM $P-pg >/dev/null
wait_for 30 bash -c "[ \"\$(docker inspect --format '{{.State.Running}}' $P-pg)\" = false ]" || true
[ "$(docker inspect --format '{{.State.ExitCode}}' $P-pg)" = 0 ] && ok "SIGTERM shuts down cleanly (exit 0)" || bad "SIGTERM shutdown"
docker start $P-pg >/dev/null
wait_for 60 docker exec $P-pg pg_isready -h 127.0.0.1 || true
mkdir -p "$TMP/pgdata" && chown root:root "$TMP/pgdata" && chmod 755 "$TMP/pgdata"
docker run -d --name $P-pg-bind -v "$TMP/pgdata:/var/lib/postgresql/data" -e POSTGRES_PASSWORD=x tt-standin/postgres:15 >/dev/null
if wait_for 60 docker exec $P-pg-bind pg_isready -h 127.0.0.1 && [ "$(stat -c %u "$TMP/pgdata")" = 999 ]; then
  ok "root-owned data mount is chowned to postgres (uid 999) and initialised"
else bad "root-owned data mount"; fi
check "no POSTGRES_PASSWORD on empty data dir: refuses to start (as official)" bash -c \
  "! docker run --rm tt-standin/postgres:15 >/dev/null 2>&1"
docker rm -f $P-pg-bind >/dev/null

# ------------------------------------------------------------------ redis
echo "== redis"
docker run -d --name $P-redis --network $NET -v $P-redis:/data -e REDIS_PASSWORD=redis-secret \
  -e REDISCLI_AUTH=redis-secret --health-cmd 'redis-cli ping | grep -q PONG' --health-interval 1s \
  tt-standin/redis:7 sh -c 'exec redis-server --requirepass "$REDIS_PASSWORD" --appendonly yes --dir /data' >/dev/null
wait_for 30 docker exec $P-redis redis-cli ping || true
[ "$(docker exec $P-redis redis-cli ping)" = PONG ] && ok "redis-cli ping with REDISCLI_AUTH -> PONG" || bad "redis ping with auth"
docker exec -e REDISCLI_AUTH= $P-redis redis-cli ping 2>&1 | has NOAUTH && ok "redis-cli ping without auth -> NOAUTH" || bad "redis NOAUTH"
check "health check 'redis-cli ping | grep -q PONG' turns healthy" wait_for 20 health_is $P-redis healthy
check "appendonly data in /data" docker exec $P-redis sh -c 'ls /data/appendonlydir'
docker run -d --name $P-redis-default tt-standin/redis:7 >/dev/null
wait_for 20 docker exec $P-redis-default redis-cli ping || true
[ "$(docker exec $P-redis-default redis-cli ping)" = PONG ] && [ "$(docker exec $P-redis-default stat -c %U /proc/1)" = redis ] &&
  ok "default CMD: redis-server --protected-mode no, as user redis" || bad "redis default CMD"

# ------------------------------------------------------------------ caddy
echo "== caddy"
printf ':80 {\n\trespond "hello from caddy"\n}\n' >"$TMP/Caddyfile"
docker run -d --name $P-caddy --network $NET -v "$TMP/Caddyfile:/etc/caddy/Caddyfile:ro" tt-standin/caddy:2 >/dev/null
check "admin API: wget -q -O- http://127.0.0.1:2019/config/" wait_for 20 docker exec $P-caddy wget -q -O- http://127.0.0.1:2019/config/
[ "$(docker exec $P-caddy wget -q -O- http://127.0.0.1/)" = "hello from caddy" ] && ok "serves the mounted Caddyfile" || bad "caddy Caddyfile"
check "autosave.json under XDG_CONFIG_HOME=/config" docker exec $P-caddy test -f /config/caddy/autosave.json
docker run -d --name $P-caddy-default tt-standin/caddy:2 >/dev/null
check "default Caddyfile serves /usr/share/caddy" wait_for 20 docker exec $P-caddy-default wget -q -O- http://127.0.0.1/

# ------------------------------------------------------------------ sample backend
echo "== sample backend"
docker run -d --name $P-backend --network $NET --network-alias backend \
  -e DB_USER=tt -e DB_PASSWORD=oldpass -e DB_HOST=$P-pg -e DB_PORT=5432 -e DB_NAME=timetracker \
  -e REDIS_HOST=$P-redis -e REDIS_PORT=6379 -e REDIS_PASSWORD=redis-secret \
  -e SECRET_KEY=super-secret-key -e ENVIRONMENT=smoke -e DEBUG=false \
  -e ALLOWED_HOSTS='["a.example","localhost","127.0.0.1","timetracker-backend","backend"]' \
  -e CORS_ORIGINS='["https://a.example"]' tt-sample/backend:dev >/dev/null
check "Docker health check turns healthy" wait_for 60 health_is $P-backend healthy
code() { docker exec $P-backend curl -s -o /dev/null -w '%{http_code}' -H "Host: $1" "http://127.0.0.1:8080$2"; }
[ "$(code localhost /health)" = 200 ] && ok "/health with Host localhost -> 200" || bad "/health localhost"
[ "$(code evil.example /health)" = 400 ] && ok "/health with Host evil.example -> 400" || bad "/health evil.example"
h=$(docker exec $P-backend curl -s -H 'Host: a.example' http://127.0.0.1:8080/api/health)
echo "      /api/health: $h"
echo "$h" | has '"status":"healthy"' && echo "$h" | has '"environment":"smoke"' && ok "/api/health healthy" || bad "/api/health"
check "the release command (alembic upgrade head) creates the schema" \
  docker run --rm --network $NET -e DB_USER=tt -e DB_PASSWORD=oldpass -e DB_HOST=$P-pg -e DB_PORT=5432 -e DB_NAME=timetracker tt-sample/backend:dev alembic upgrade head
p=$(docker exec $P-backend curl -s -w ' %{http_code}' -H 'Host: localhost' -H 'Content-Type: application/json' -d '{"name":"first"}' http://127.0.0.1:8080/api/items)
docker exec $P-backend curl -s -o /dev/null -H 'Host: localhost' -H 'Content-Type: application/json' -d '{"name":"second"}' http://127.0.0.1:8080/api/items
g=$(docker exec $P-backend curl -s -H 'Host: localhost' http://127.0.0.1:8080/api/items)
echo "      POST: $p"; echo "      GET:  $g"
echo "$p" | has '"name":"first"} 201' && ok "POST /api/items -> 201 {id,name}" || bad "POST /api/items"
echo "$g" | python3 -c 'import json,sys; l=json.load(sys.stdin); assert [i["name"] for i in l]==["first","second"] and l[0]["id"]<l[1]["id"]' &&
  ok "GET /api/items ordered by id" || bad "GET /api/items"
[ "$(docker exec $P-backend curl -s -o /dev/null -w '%{http_code}' -H 'Host: localhost' -H 'Content-Type: application/json' -d '{}' http://127.0.0.1:8080/api/items)" = 422 ] &&
  ok "POST without name -> 422" || bad "POST validation"
ws=$(docker exec $P-backend python3 -c '
import asyncio, websockets
async def main():
    async with websockets.connect("ws://127.0.0.1:8080/api/ws/echo", extra_headers={"Host": "localhost"}) as ws:
        out = []
        for m in ("hello", "wörld"):
            await ws.send(m); out.append(await ws.recv())
        print("|".join(out))
asyncio.run(main())')
[ "$ws" = "hello|wörld" ] && ok "websocket /api/ws/echo echoes" || bad "websocket echo ($ws)"
cors=$(docker exec $P-backend curl -s -D - -o /dev/null -H 'Host: localhost' -H 'Origin: https://a.example' http://127.0.0.1:8080/health)
echo "$cors" | has -i '^access-control-allow-origin: https://a.example' && ok "CORS_ORIGINS honoured" || bad "CORS"
[ "$(docker exec $P-backend id -un)" = app ] && ok "runs as user app" || bad "backend user"

docker run -d --name $P-backend-nodb --network $NET -e DB_HOST=nowhere.invalid -e DB_PASSWORD=pw-should-not-leak \
  -e REDIS_HOST=nowhere.invalid -e REDIS_PASSWORD=redis-should-not-leak tt-sample/backend:dev >/dev/null
check "backend without DB/Redis still turns healthy (/health)" wait_for 60 health_is $P-backend-nodb healthy
n=$(docker exec $P-backend-nodb curl -s -w ' %{http_code}' -H 'Host: localhost' http://127.0.0.1:8080/api/health)
echo "      /api/health without deps: $n"
echo "$n" | has '"database":"unhealthy: .*"redis":"unhealthy: .* 503$' && ok "/api/health -> 503 with unhealthy reasons" || bad "/api/health 503"
! docker logs $P-backend-nodb 2>&1 | has -E 'should-not-leak' && ! docker logs $P-backend 2>&1 | has -E 'oldpass|redis-secret|super-secret-key' &&
  ok "no secret value in the logs" || bad "secrets in logs"

# ------------------------------------------------------------------ nginx / frontend
echo "== nginx / frontend"
docker run -d --name $P-nginx-default tt-standin/nginx:1 >/dev/null
check "nginx stand-in default config serves index" wait_for 20 docker exec $P-nginx-default curl -fsS http://127.0.0.1/
cat >"$TMP/nginx.conf" <<'CONF'
worker_processes 1;
pid /tmp/nginx.pid;
events { worker_connections 256; }
http {
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  server {
    listen 80;
    root /usr/share/nginx/html;
    location /api/ {
      proxy_pass http://backend:8080;
      proxy_http_version 1.1;
      proxy_set_header Host backend;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
    }
    location / { try_files $uri /index.html; }
  }
}
CONF
docker run -d --name $P-frontend --network $NET -v "$TMP/nginx.conf:/etc/nginx/nginx.conf:ro" tt-sample/frontend:dev >/dev/null
wait_for 20 docker exec $P-frontend curl -fsS http://127.0.0.1/ || true
page=$(docker exec $P-frontend curl -fsS http://127.0.0.1/ || true)
echo "$page" | has 'TimeTracker sample frontend' && echo "$page" | has '<title>TimeTracker</title>' &&
  ok "frontend serves index.html (with a deploy-style nginx.conf)" || bad "frontend index"
docker exec $P-frontend curl -fsS http://127.0.0.1/api/health | has '"status":"healthy"' &&
  ok "frontend proxies /api/ to the backend" || bad "frontend proxy"
docker logs $P-frontend 2>&1 | has '"GET /api/health' && ok "access log goes to stdout" || bad "nginx access log"
t0=$(date +%s); docker stop $P-frontend >/dev/null; t1=$(date +%s)
[ $((t1 - t0)) -lt 5 ] && ok "nginx stops quickly on SIGQUIT ($((t1 - t0))s)" || bad "nginx stop took $((t1 - t0))s"

echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
