import type { EnvironmentDefinition } from "../../infra/model/schema.js";

/** Where a rehearsed stack's Caddy listens on this machine. */
export const REHEARSAL_HTTP_PORT = 18080;
export const REHEARSAL_HTTPS_PORT = 18443;

/**
 * The same stack, made local: its domain under `.localhost`, no TLS, Caddy on loopback
 * ports, the sample app built from `app-images/sample`, no DNS. Names, ports, volumes and
 * everything else are the stack's own.
 */
export function localize(definition: EnvironmentDefinition): EnvironmentDefinition {
  return {
    ...definition,
    domain: `${definition.name}.rehearsal.localhost`,
    extraDomains: [],
    tls: { mode: "off" },
    caddy: { httpPort: REHEARSAL_HTTP_PORT, httpsPort: REHEARSAL_HTTPS_PORT, bind: "127.0.0.1" },
    host: { ...definition.host, dns: "none" },
    images: {
      ...definition.images,
      backend: { source: "build", context: "backend", dockerfile: "app-images/sample/backend/Dockerfile" },
      frontend: { source: "build", context: "frontend", dockerfile: "app-images/sample/frontend/Dockerfile" },
    },
  };
}

/** The catalog with one stack replaced by `definition`. */
export function withDefinition(catalog: readonly EnvironmentDefinition[], definition: EnvironmentDefinition): EnvironmentDefinition[] {
  return catalog.map((d) => (d.name === definition.name ? definition : d));
}
