import type { Plan, Route } from "../model/plan.js";
import { hostStatusRoute } from "./host-status.js";

const GENERATED = "# Generated from the stack's Plan by `npm run render`. Do not edit.";

function globalOptions(plan: Plan): string[] {
  const { caddy, tls } = plan;
  const options = [`admin ${caddy.adminAddress}`];
  if (caddy.httpPort !== 80) options.push(`http_port ${caddy.httpPort}`);
  if (caddy.httpsPort !== 443) options.push(`https_port ${caddy.httpsPort}`);
  if (caddy.bind) options.push(`default_bind ${caddy.bind}`);
  if (tls.mode === "acme" && tls.email) options.push(`email ${tls.email}`);
  if (tls.mode === "internal") options.push("local_certs");
  if (tls.mode === "off") options.push("auto_https off");
  // The standby slot is empty between deploys and fails every active check, which Caddy
  // logs at each interval: keep those lines out of the log (the release tool checks slots).
  options.push("log default {", "\texclude http.handlers.reverse_proxy.health_checker.active", "}");
  return options;
}

function proxy(plan: Plan, route: Route): string[] {
  const target = plan.containers[route.service];
  const interval = plan.caddy.healthIntervalSeconds;
  return [
    // Maintenance mode: an error Caddy answers with the page (maintenance below), before the proxy.
    `error @${MAINTENANCE_MATCHER} "${MAINTENANCE_ERROR}" 503`,
    // Both slots of the service: a slot takes traffic once its readiness check passes, so a
    // new version goes live without touching Caddy, and a stopped slot is skipped.
    `reverse_proxy ${route.upstreams.join(" ")} {`,
    "\tlb_policy first",
    // A refused connection (a slot that is stopping or empty) is retried on the other slot
    // at once; a restarting service is waited for instead of failing the request.
    "\tlb_try_duration 30s",
    "\tlb_try_interval 50ms",
    // A refused dial marks the slot down at once (and for a second only), so the retry
    // goes to the other slot instead of waiting for the next active check.
    "\tfail_duration 1s",
    `\thealth_uri ${target.release?.readyPath ?? target.healthPath ?? "/"}`,
    `\thealth_interval ${interval}s`,
    `\thealth_timeout ${interval}s`,
    // Caddy would send the upstream's address as Host; the backend allows only known hosts.
    "\thealth_headers {",
    `\t\tHost ${plan.caddy.healthHost}`,
    "\t}",
    "}",
  ];
}

/** The named matcher of a request in maintenance mode, and the message of the error that answers it. */
const MAINTENANCE_MATCHER = "maintenance";
const MAINTENANCE_ERROR = "maintenance";

/**
 * Maintenance mode (plan.caddy.maintenance): while the page exists, every route's request but
 * the operator path becomes an error, and the error route answers it with the page, 503 and
 * Retry-After. Through an error because a file server refuses methods other than GET and HEAD
 * (405) outside an error route (caddyserver/caddy#5166, fileserver/staticfiles.go), and a POST
 * must get the page too. The `file` matcher stats the page on each request: no reload.
 */
function maintenance(plan: Plan): { matcher: string[]; errors: string[] } {
  const m = plan.caddy.maintenance;
  return {
    matcher: [`@${MAINTENANCE_MATCHER} {`, "\tfile {", `\t\troot ${m.dir}`, `\t\ttry_files /${m.page}`, "\t}", `\tnot path ${m.operatorPath}`, "}"],
    errors: [
      "handle_errors {",
      `\t@${MAINTENANCE_MATCHER}_page expression {err.message} == "${MAINTENANCE_ERROR}"`,
      `\thandle @${MAINTENANCE_MATCHER}_page {`,
      `\t\troot * ${m.dir}`,
      `\t\theader Retry-After ${m.retryAfterSeconds}`,
      "\t\theader Cache-Control no-store",
      `\t\trewrite * /${m.page}`,
      "\t\tfile_server",
      "\t}",
      "}",
    ],
  };
}

/** Caddy's configuration: one site per domain, all sharing the same routes. */
export function renderCaddyfile(plan: Plan): string {
  const indent = (lines: string[], depth: number) => lines.map((line) => "\t".repeat(depth) + line);
  const routes = plan.caddy.routes.flatMap((route) => [
    route.path === "/*" ? "handle {" : `handle ${route.path} {`,
    ...indent(proxy(plan, route), 1),
    "}",
  ]);
  const siteAddress = (domain: string) => (plan.tls.mode === "off" ? `http://${domain}` : domain);
  const lines = [
    GENERATED,
    "{",
    ...indent(globalOptions(plan), 1),
    "}",
    "",
    "(timetracker_routes) {",
    ...indent(maintenance(plan).matcher, 1),
    ...indent(hostStatusRoute(plan), 1),
    ...indent(routes, 1),
    ...indent(maintenance(plan).errors, 1),
    "}",
    ...plan.domains.flatMap((domain) => ["", `${siteAddress(domain)} {`, "\timport timetracker_routes", "}"]),
  ];
  return `${lines.join("\n")}\n`;
}
