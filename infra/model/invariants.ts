import type { ContainerPlan, Plan } from "./plan.js";
import type { Problem } from "./problems.js";
import { CADDY_ADMIN_PORT } from "./schema.js";

/**
 * Host ports no app service may publish, and what holds each. Every check and the port
 * allocator read this one table.
 */
export const RESERVED_HOST_PORTS: ReadonlyMap<number, string> = new Map([
  [22, "SSH"],
  [80, "Caddy's HTTP"],
  [443, "Caddy's HTTPS"],
  [CADDY_ADMIN_PORT, "Caddy's admin API"],
]);

/** The stack that serves the real users: it runs only with the app's production settings. */
export const PRODUCTION_STACK = "prod";

const containers = (plan: Plan): ContainerPlan[] => Object.values(plan.containers);

/** Every Host header the stack itself sends to the backend, read from where it is set. */
export function hostHeadersSent(plan: Plan): { sender: string; host: string }[] {
  const test = plan.containers.backend.healthCheck.test;
  const headerIndex = test.indexOf("-H");
  const checkHeader = headerIndex >= 0 ? test[headerIndex + 1] : undefined;
  const checkHost = checkHeader?.match(/^Host:\s*(\S+)$/i)?.[1];
  return [
    { sender: "the backend's Docker health check", host: checkHost ?? "(none: the check sends no Host header)" },
    { sender: "Caddy's active health checks", host: plan.caddy.healthHost },
    { sender: "nginx in the frontend, proxying /api/", host: plan.frontendUpstream.host },
    ...plan.domains.map((domain) => ({ sender: `Caddy, proxying a request for ${domain}`, host: domain })),
  ];
}

/** Checks that hold inside one Plan. Paths are prefixed with the stack name. */
export function checkPlan(plan: Plan): Problem[] {
  const problems: Problem[] = [];
  const at = (path: string, message: string) => problems.push({ path: `${plan.stack}.${path}`, message });
  const all = containers(plan);

  const names = new Set<string>();
  for (const c of all) {
    if (names.has(c.name)) at("containerPrefix", `container name "${c.name}" is used twice`);
    names.add(c.name);
  }

  const published = new Map<number, string>();
  for (const c of all) {
    for (const binding of c.ports) {
      const holder = RESERVED_HOST_PORTS.get(binding.external);
      if (holder) at(binding.origin, `${binding.external} is reserved for the host (${holder})`);
      if (binding.ip !== "127.0.0.1") {
        at(binding.origin, `${c.name} publishes on ${binding.ip}: app ports are published on 127.0.0.1 only`);
      }
      const other = published.get(binding.external);
      if (other) at(binding.origin, `${binding.external} is already used by ${other}`);
      published.set(binding.external, c.name);
    }
  }

  // Caddy's admin port is in the reserved table; its HTTP and HTTPS ports are set per stack.
  for (const port of [plan.caddy.httpPort, plan.caddy.httpsPort]) {
    const other = published.get(port);
    if (other) at("caddy", `Caddy listens on ${port} on the host, which ${other} also publishes`);
  }

  for (const record of plan.dns) {
    if (record.fqdn !== record.zone && !record.fqdn.endsWith(`.${record.zone}`)) {
      at("host.dnsZone", `${record.fqdn} is not inside the DNS zone ${record.zone}`);
    }
  }

  for (const route of plan.caddy.routes) {
    const target = plan.containers[route.service];
    for (const upstream of route.upstreams) {
      const reachable = target.ports.some((p) => `${p.ip}:${p.external}` === upstream && p.internal === target.listenPort);
      if (!reachable) at("ports", `Caddy route ${route.path} goes to ${upstream}, which no container of this stack publishes`);
    }
  }

  const frontend = plan.containers.frontend;
  const upstream = all.find((c) => c.name === plan.frontendUpstream.container || c.aliases.includes(plan.frontendUpstream.container));
  if (!upstream) {
    at("containerPrefix", `nginx proxies /api/ to "${plan.frontendUpstream.container}", which is no container of this stack`);
  } else if (upstream.network !== "bridge" || frontend.network !== "bridge") {
    at("containerPrefix", `nginx proxies /api/ to "${upstream.name}", which is not on the frontend's network ${plan.network}`);
  } else if (upstream.listenPort !== plan.frontendUpstream.port) {
    at("containerPrefix", `nginx proxies /api/ to port ${plan.frontendUpstream.port}, but ${upstream.name} listens on ${upstream.listenPort}`);
  }

  // Sets, not Array.includes: a plan has up to 100 domains, each checked against the others.
  const allowed = new Set(plan.allowedHosts);
  for (const use of hostHeadersSent(plan)) {
    if (!allowed.has(use.host)) {
      at("domain", `${use.sender} sends Host "${use.host}", which ALLOWED_HOSTS does not allow (TrustedHostMiddleware answers 400)`);
    }
  }
  const backend = plan.containers.backend;
  const required = [...plan.domains, "localhost", "127.0.0.1", backend.name, ...backend.aliases];
  for (const host of required) {
    if (!allowed.has(host)) at("domain", `ALLOWED_HOSTS lacks "${host}"`);
  }
  if (backend.env.ALLOWED_HOSTS !== JSON.stringify(plan.allowedHosts)) {
    at("app.extraEnv", "the backend's ALLOWED_HOSTS differs from the plan's allowed hosts");
  }

  if (plan.environment === "production" && backend.env.DEBUG !== "false") {
    at("app.debug", "production runs with DEBUG=false");
  }
  if (plan.stack === PRODUCTION_STACK && plan.environment !== "production") {
    at("app.environment", `is "${plan.environment}", but ${PRODUCTION_STACK} is the production stack: its users would get the app's ${plan.environment} settings; write "production"`);
  }
  return problems;
}

interface Claim {
  kind: string;
  value: string;
  stack: string;
  path: string;
}

function claims(plan: Plan): Claim[] {
  const claim = (kind: string, value: string | number, path: string): Claim => ({
    kind,
    value: String(value),
    stack: plan.stack,
    path: `${plan.stack}.${path}`,
  });
  return [
    ...containers(plan).map((c) => claim("container name", c.name, "containerPrefix")),
    ...containers(plan).flatMap((c) => c.ports.map((p) => claim("host port", p.external, p.origin))),
    ...Object.entries(plan.volumes).map(([key, volume]) => claim("volume name", volume, `volumes.${key}`)),
    claim("network name", plan.network, "containerPrefix"),
    ...plan.domains.map((d, i) => claim("domain", d, i === 0 ? "domain" : `extraDomains.${i - 1}`)),
  ];
}

/**
 * Checks across the whole catalog: no two stacks share a container name, host port,
 * volume, network or domain, so any two of them could run on one host.
 */
export function checkCatalog(plans: Plan[]): Problem[] {
  const problems: Problem[] = [];
  const stacks = new Set<string>();
  for (const plan of plans) {
    if (stacks.has(plan.stack)) problems.push({ path: `${plan.stack}.name`, message: `stack "${plan.stack}" is defined twice` });
    stacks.add(plan.stack);
  }
  const owners = new Map<string, Claim>();
  for (const c of plans.flatMap(claims)) {
    const key = `${c.kind}:${c.value}`;
    const owner = owners.get(key);
    if (owner && owner.stack !== c.stack) {
      problems.push({ path: c.path, message: `${c.value} is already used by ${owner.stack} (${c.kind})` });
    } else if (!owner) {
      owners.set(key, c);
    }
  }
  return problems;
}
