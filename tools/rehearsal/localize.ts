import type { EnvironmentDefinition } from "../../infra/model/schema.js";

/** The rehearsal's own address: it administers the host from inside the admin CIDRs, as an operator does. */
export const REHEARSAL_ADMIN_CIDR = "127.0.0.1/32";

/** The sample backend starts this slowly, so a deploy's figures are not flattered by a fast app. */
export const SAMPLE_START_DELAY_SECONDS = 10;

/**
 * The same stack, made local: its domain under `.localhost`, no TLS, the rehearsal's
 * address among the admin CIDRs, the sample app built from `app-images/sample` (starting
 * slowly), no DNS, no site-down alert (`alerts` needs Route 53, CloudWatch and SNS: the
 * rehearsal has no AWS, and nothing outside could reach a `.localhost` domain anyway).
 * Names, ports, volumes, the bundle and everything else are the stack's own.
 */
export function localize(definition: EnvironmentDefinition): EnvironmentDefinition {
  const { alerts: _noAlerts, ...rehearsed } = definition;
  return {
    ...rehearsed,
    domain: `${definition.name}.rehearsal.localhost`,
    extraDomains: [],
    tls: { mode: "off" },
    app: { ...definition.app, extraEnv: { ...definition.app?.extraEnv, SAMPLE_START_DELAY_SECONDS: String(SAMPLE_START_DELAY_SECONDS) } },
    host: { ...definition.host, dns: "none", adminCidrs: [...(definition.host?.adminCidrs ?? []), REHEARSAL_ADMIN_CIDR] },
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
