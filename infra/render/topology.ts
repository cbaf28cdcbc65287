import { hostHeadersSent } from "../model/invariants.js";
import type { ContainerPlan, Plan } from "../model/plan.js";

const id = (c: ContainerPlan) => c.service;

/** Characters that could end a table cell, open or close a code span, start HTML, or break a line. */
const MARKDOWN_SPECIAL = /[|`<>\r\n]/g;
const MARKDOWN_ENTITY: Record<string, string> = { "|": "&#124;", "`": "&#96;", "<": "&lt;", ">": "&gt;", "\r": " ", "\n": " " };
const MERMAID_SPECIAL = /["|`<>\r\n]/g;
const MERMAID_ENTITY: Record<string, string> = { '"': "#quot;", "|": "#124;", "`": "#96;", "<": "#lt;", ">": "#gt;", "\r": " ", "\n": " " };

/**
 * Text from a definition, printed into Markdown (a list line or a table cell): it cannot end
 * the cell, open a code span or an HTML tag, or start a line of its own. The schema already
 * keeps these characters out of every field printed here; this holds even for a Plan that
 * did not come through it.
 */
export const markdownText = (value: string | number) => String(value).replace(MARKDOWN_SPECIAL, (c) => MARKDOWN_ENTITY[c] ?? c);

/** Text from a definition as code: a code span when nothing in it can break one, escaped plain text otherwise. */
export const markdownCode = (value: string | number) => {
  const text = String(value);
  return text.search(MARKDOWN_SPECIAL) >= 0 ? markdownText(text) : `\`${text}\``;
};

/** Text from a definition inside a quoted Mermaid label (`"..."`), in a fenced block. */
export const mermaidText = (value: string | number) => String(value).replace(MERMAID_SPECIAL, (c) => MERMAID_ENTITY[c] ?? c);

const publishedAt = (c: ContainerPlan) =>
  c.network === "host" ? "host network" : c.ports.map((p) => markdownText(`${p.ip}:${p.external} → ${p.internal}`)).join(", ") || "internal only";

/** A Markdown summary with a Mermaid diagram, for reviewers reading a pull request. */
export function renderTopology(plan: Plan): string {
  const containers = Object.values(plan.containers);
  const { caddy, db, redis, backend, frontend } = plan.containers;
  const publicPort = plan.tls.mode === "off" ? plan.caddy.httpPort : plan.caddy.httpsPort;
  const m = mermaidText;
  const edges = [
    ...plan.domains.map((d, i) => `  domain${i}(("${m(d)}")) -->|":${m(publicPort)}"| ${id(caddy)}`),
    ...plan.caddy.routes.map((r) => `  ${id(caddy)} -->|"${m(r.path)} → ${m(r.upstreams.join(" or "))}"| ${r.service}`),
    `  ${id(frontend)} -->|"/api/ → ${m(plan.frontendUpstream.container)}:${m(plan.frontendUpstream.port)}"| ${id(backend)}`,
    `  ${id(backend)} -->|"${m(db.name)}:${m(db.listenPort)}"| ${id(db)}`,
    `  ${id(backend)} -->|"${m(redis.name)}:${m(redis.listenPort)}"| ${id(redis)}`,
  ];
  const nodes = containers.map((c) => `  ${id(c)}["${m(c.name)}"]`);
  const volumeEdges = containers.flatMap((c) =>
    c.volumes.map((v) => `  ${id(c)} --- ${v.volume.replace(/[^A-Za-z0-9]/g, "_")}[("${m(v.volume)}")]`),
  );
  const row = (cells: string[]) => `| ${cells.join(" | ")} |`;
  const text = markdownText;
  const code = markdownCode;
  return [
    `# Stack ${code(plan.stack)}`,
    "",
    "Generated from the stack's Plan by `npm run render`. Do not edit.",
    "",
    `- URL: ${text(plan.publicUrl)}`,
    `- Domains: ${plan.domains.map(text).join(", ")}`,
    `- Environment: ${text(plan.environment)}; TLS: ${text(plan.tls.mode)}; protected: ${plan.protect ? "yes" : "no"}`,
    `- Host: Lightsail ${text(plan.host.bundle)} (${text(plan.host.blueprint)}) in ${text(plan.host.availabilityZone)}; SSH from ${plan.host.adminCidrs.map(text).join(", ") || "nowhere"}`,
    `- Docker network: ${code(plan.network)}`,
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
        text(c.service),
        code(c.name),
        c.aliases.map(text).join(", ") || "–",
        c.image.source === "registry" ? code(c.image.ref) : `built from ${code(c.image.context)}`,
        publishedAt(c),
        c.volumes.map((v) => `${code(v.volume)} → ${text(v.path)}`).join(", ") || "–",
      ]),
    ),
    "",
    "## Routes",
    "",
    row(["path", "upstream"]),
    row(["---", "---"]),
    ...plan.caddy.routes.map((r) => row([code(r.path), `${text(r.service)} at ${text(r.upstreams.join(" or "))} (whichever slot is live)`])),
    "",
    "## Hosts",
    "",
    `ALLOWED_HOSTS: ${plan.allowedHosts.map(code).join(", ")}`,
    "",
    `CORS origins: ${plan.corsOrigins.map(code).join(", ")}`,
    "",
    row(["sender", "Host header"]),
    row(["---", "---"]),
    ...hostHeadersSent(plan).map((u) => row([text(u.sender), code(u.host)])),
    "",
    "## Secrets",
    "",
    row(["name", "source", "rotation"]),
    row(["---", "---", "---"]),
    ...plan.secrets.map((s) =>
      row([text(s.name), s.adoptFrom && s.rotation === 0 ? `adopted from stack secret ${code(s.adoptFrom)}` : "generated", String(s.rotation)]),
    ),
    "",
  ].join("\n");
}
