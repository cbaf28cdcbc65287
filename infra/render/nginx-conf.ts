import type { Plan } from "../model/plan.js";

/**
 * The frontend container's complete nginx.conf: serves the built SPA and proxies
 * `/api/` (websockets included) to the backend by its container name. The upstream
 * sits in a variable so Docker's DNS resolves it per request: nginx starts, and
 * keeps serving the SPA, while the backend is down. A hashed file the image lacks comes from
 * the files earlier releases left on the data disk (plan.frontendAssets).
 */
export function renderNginxConf(plan: Plan): string {
  const frontend = plan.containers.frontend;
  const upstream = plan.frontendUpstream;
  const assets = plan.frontendAssets;
  // A hashed name's content never changes: a browser keeps it a year without asking again.
  const immutable = 'add_header Cache-Control "public, max-age=31536000, immutable";';
  return `# Generated from the stack's Plan by \`npm run render\`. Do not edit.
worker_processes auto;
pid /tmp/nginx.pid;
error_log /dev/stderr warn;

events {
    worker_connections 1024;
}

http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log /dev/stdout;
    sendfile on;
    server_tokens off;
    client_body_temp_path /tmp/nginx-client-body;
    proxy_temp_path /tmp/nginx-proxy;
    fastcgi_temp_path /tmp/nginx-fastcgi;
    uwsgi_temp_path /tmp/nginx-uwsgi;
    scgi_temp_path /tmp/nginx-scgi;

    map $http_upgrade $connection_upgrade {
        default upgrade;
        '' close;
    }

    # Docker's embedded DNS on user-defined networks; a swapped-in backend is found within the cache time.
    resolver 127.0.0.11 valid=${upstream.dnsCacheSeconds}s ipv6=off;

    server {
        listen ${frontend.listenPort};
        root ${assets.webRoot};
        index index.html;

        location = ${frontend.healthPath} {
            access_log off;
            default_type text/plain;
            return 200 "ok\\n";
        }

        location /api/ {
            set $backend http://${upstream.container}:${upstream.port};
            proxy_pass $backend;
            proxy_http_version 1.1;
            proxy_set_header Host ${upstream.host};
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout 3600s;
        }

        location ${assets.urlPath} {
            try_files $uri @kept_assets;
            ${immutable}
        }

        # A page loaded before the last frontend deploy names the files of its own release:
        # the release tool keeps them on the data disk (app.frontend.keepAssetsHours).
        location @kept_assets {
            root ${assets.keptRoot};
            ${immutable}
        }

        # The page names the current hashed files: a browser asks for it again every time.
        location = /index.html {
            add_header Cache-Control "no-cache";
        }

        location / {
            try_files $uri $uri/ /index.html;
        }
    }
}
`;
}
