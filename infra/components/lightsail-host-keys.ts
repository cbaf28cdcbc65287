import { GetInstanceAccessDetailsCommand, LightsailClient } from "@aws-sdk/client-lightsail";
import type { ReportedHostKey } from "./known-hosts.js";

/** How long to wait for Lightsail to have read a new instance's host keys. */
export const HOST_KEYS_WAIT = { attempts: 30, intervalMs: 10_000 } as const;

/**
 * The SSH host keys Lightsail reports for an instance (GetInstanceAccessDetails `hostKeys`),
 * which it reads from the instance itself, not over the network the first contact crossed.
 * @pulumi/aws has no data source for it, so the AWS SDK asks, with the same credentials and
 * region as the provider (AWS_ENDPOINT_URL_LIGHTSAIL points it at the rehearsal's stand-in).
 * Only the host keys are kept: the call also returns a temporary private key, which is
 * dropped here and never logged.
 */
export async function lightsailHostKeys(region: string, instanceName: string, wait: { attempts: number; intervalMs: number } = HOST_KEYS_WAIT): Promise<ReportedHostKey[]> {
  const client = new LightsailClient({ region });
  try {
    for (let attempt = 1; ; attempt += 1) {
      const { accessDetails } = await client.send(new GetInstanceAccessDetailsCommand({ instanceName, protocol: "ssh" }));
      const keys = (accessDetails?.hostKeys ?? []).map(({ algorithm, publicKey, fingerprintSHA256 }) => ({ algorithm, publicKey, fingerprintSHA256 }));
      // A new instance's keys are listed once Lightsail has seen it boot.
      if (keys.length > 0 || attempt >= wait.attempts) return keys;
      await new Promise((resolve) => setTimeout(resolve, wait.intervalMs));
    }
  } catch (error) {
    throw new Error(`could not read the host keys Lightsail reports for ${instanceName} (GetInstanceAccessDetails): ${(error as Error).message}`);
  } finally {
    client.destroy();
  }
}
