#!/bin/sh
# Entrypoint of tt-standin/redis:7, same behaviour as the official redis image's:
#  - "docker run image --foo" or "docker run image x.conf" means "redis-server ...";
#  - "redis-server ..." started as root: chown /data (cwd) to redis and drop to user redis;
#  - anything else (e.g. sh -c "exec redis-server ...") is exec'd as given.
set -e

if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
  set -- redis-server "$@"
fi

if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
  find . \! -user redis -exec chown redis '{}' +
  exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi

# keep data files private when the default umask is in effect
um=$(umask)
if [ "$um" = 0022 ]; then
  umask 0077
fi

exec "$@"
