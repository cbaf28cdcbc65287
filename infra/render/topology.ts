import { hostHeadersSent } from "../model/invariants.js";
import type { ContainerPlan, Plan } from "../model/plan.js";

const id = (c: ContainerPlan) => c.service;

const publishedAt = (c: ContainerPlan) =>
  c.network === "host" ? "host network" : c.ports.map((p) => `${p.ip}:${p.external} → ${p.internal}`).join(", ") || "internal only";

/** A Markdown summary with a Mermaid diagram, for reviewers reading a pull request. */
export function renderTopology(plan: Plan): string {
  const containers = Object.values(plan.containers);
  const { caddy, db, redis, backend, frontend } = plan.containers;
  const publicPort = plan.tls.mode === "off" ? plan.caddy.httpPort : plan.caddy.httpsPort;
  const edges = [
    ...plan.domains.map((d, i) => `  domain${i}(("${d}")) -->|":${publicPort}"| ${id(caddy)}`),
    ...plan.caddy.routes.map((r) => `  ${id(caddy)} -->|"${r.path} → ${r.upstreams.join(" or ")}"| ${r.service}`),
    `  ${id(frontend)} -->|"/api/ → ${plan.frontendUpstream.container}:${plan.frontendUpstream.port}"| ${id(backend)}`,
    `  ${id(backend)} -->|"${db.name}:${db.listenPort}"| ${id(db)}`,
    `  ${id(backend)} -->|"${redis.name}:${redis.listenPort}"| ${id(redis)}`,
  ];
  const nodes = containers.map((c) => `  ${id(c)}["${c.name}"]`);
  const volumeEdges = containers.flatMap((c) =>
    c.volumes.map((v) => `  ${id(c)} --- ${v.volume.replace(/[^A-Za-z0-9]/g, "_")}[("${v.volume}")]`),
  );
  const row = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [
    `# Stack \`${plan.stack}\``,
    "",
    "Generated from the stack's Plan by `npm run render`. Do not edit.",
    "",
    `- URL: ${plan.publicUrl}`,
    `- Domains: ${plan.domains.join(", ")}`,
    `- Environment: ${plan.environment}; TLS: ${plan.tls.mode}; protected: ${plan.protect ? "yes" : "no"}`,
    `- Host: Lightsail ${plan.host.bundle} (${plan.host.blueprint}) in ${plan.host.availabilityZone}; SSH from ${plan.host.adminCidrs.join(", ") || "nowhere"}`,
    `- Docker network: \`${plan.network}\``,
    "",
    "```mermaid",
    "flowchart LR",
    ...nodes,
    ...edges,
    ...volumeEdges,
    "```",
    "",
    "## Containers",
    "",
    row(["service", "container", "aliases", "image", "published", "volumes"]),
    row(["---", "---", "---", "---", "---", "---"]),
    ...containers.map((c) =>
      row([
        c.service,
        `\`${c.name}\``,
        c.aliases.join(", ") || "–",
        c.image.source === "registry" ? `\`${c.image.ref}\`` : `built from \`${c.image.context}\``,
        publishedAt(c),
        c.volumes.map((v) => `\`${v.volume}\` → ${v.path}`).join(", ") || "–",
      ]),
    ),
    "",
    "## Routes",
    "",
    row(["path", "upstream"]),
    row(["---", "---"]),
    ...plan.caddy.routes.map((r) => row([`\`${r.path}\``, `${r.service} at ${r.upstreams.join(" or ")} (whichever slot is live)`])),
    "",
    "## Hosts",
    "",
    `ALLOWED_HOSTS: ${plan.allowedHosts.map((h) => `\`${h}\``).join(", ")}`,
    "",
    `CORS origins: ${plan.corsOrigins.map((o) => `\`${o}\``).join(", ")}`,
    "",
    row(["sender", "Host header"]),
    row(["---", "---"]),
    ...hostHeadersSent(plan).map((u) => row([u.sender, `\`${u.host}\``])),
    "",
    "## Secrets",
    "",
    row(["name", "source", "rotation"]),
    row(["---", "---", "---"]),
    ...plan.secrets.map((s) =>
      row([s.name, s.adoptFrom && s.rotation === 0 ? `adopted from stack secret \`${s.adoptFrom}\`` : "generated", String(s.rotation)]),
    ),
    "",
  ].join("\n");
}
