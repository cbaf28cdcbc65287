import type { Rehearsal } from "../context.js";
import { httpRequest } from "../http.js";
import { check } from "../probes.js";

/** Rows written through Caddy: every later probe (releases, edits, backups, host
 *  replacement, teardown) reads them back to show nothing was lost. */
export async function rowsWritten(r: Rehearsal): Promise<void> {
  const { say, probes, web, host, items } = r;
  say("nothing is lost");
  await probes.run("rows written through Caddy", async () => {
    for (const name of items) {
      const res = await httpRequest(web, "/api/items", host, { method: "POST", body: { name } });
      check(res.status === 200 || res.status === 201, `POST answered ${res.status}: ${res.body}`);
    }
    return items.join(", ");
  });
}
