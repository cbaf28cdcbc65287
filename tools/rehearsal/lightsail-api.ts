import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import type { ReportedHostKey } from "../../infra/components/known-hosts.js";

/** What the stand-in answers for an instance: its host keys, or undefined when no such instance exists. */
export type HostKeysOf = (instanceName: string) => Promise<ReportedHostKey[] | undefined>;

const TARGET = "Lightsail_20161128.GetInstanceAccessDetails";

const body = (req: IncomingMessage) =>
  new Promise<string>((resolve, reject) => {
    let text = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => (text += chunk));
    req.on("end", () => resolve(text));
    req.on("error", reject);
  });

/**
 * The one Lightsail API call the program makes itself (the AWS SDK's GetInstanceAccessDetails,
 * for the instance's host keys), answered over HTTP in the AWS JSON 1.1 protocol, as the real
 * endpoint does: the program's SDK client reaches it through AWS_ENDPOINT_URL_LIGHTSAIL.
 * Signatures are not checked. Any other call is refused, so a new one cannot pass unnoticed.
 */
export async function startLightsailApi(hostKeysOf: HostKeysOf): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer(async (req, res) => {
    const reply = (status: number, payload: unknown) => {
      res.writeHead(status, { "content-type": "application/x-amz-json-1.1" });
      res.end(JSON.stringify(payload));
    };
    try {
      const target = req.headers["x-amz-target"];
      if (req.method !== "POST" || target !== TARGET) {
        reply(400, { __type: "InvalidInputException", message: `the stand-in answers only ${TARGET}, not ${String(target)}` });
        return;
      }
      const { instanceName } = JSON.parse(await body(req)) as { instanceName?: string };
      const hostKeys = instanceName ? await hostKeysOf(instanceName) : undefined;
      if (!hostKeys) {
        reply(400, { __type: "NotFoundException", message: `The Instance does not exist: ${String(instanceName)}` });
        return;
      }
      reply(200, { accessDetails: { instanceName, protocol: "ssh", username: "ubuntu", hostKeys } });
    } catch (error) {
      reply(500, { __type: "ServiceException", message: (error as Error).message });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
