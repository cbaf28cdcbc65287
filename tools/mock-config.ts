import type { Plan } from "../infra/model/plan.js";

/** The adopted password the mocked stacks hold; tests check it never appears in clear. */
export const MOCK_ADOPTED_PASSWORD = "mock-adopted-db-password-7f3a";

/**
 * Stack config for running the program without a Pulumi CLI: a fixture public key (not a
 * real key; the program never sees a private one), the sample app as the app source, and a stand-in for each adopted secret.
 */
export function mockConfig(plan: Plan): { config: Record<string, string>; secretKeys: string[] } {
  const adopted = plan.secrets.flatMap((s) => (s.adoptFrom && s.rotation === 0 ? [`timetracker:${s.adoptFrom}`] : []));
  return {
    config: {
      "aws:region": plan.host.region,
      "timetracker:sshPublicKeyPath": "tools/fixtures/mock-ssh-key.pub",
      // Read only by a program from before SSH went through an agent: a preview against an older base runs one.
      "timetracker:sshPrivateKeyPath": "tools/fixtures/mock-ssh-key",
      "timetracker:appSource": "app-images/sample",
      ...Object.fromEntries(adopted.map((key) => [key, MOCK_ADOPTED_PASSWORD])),
    },
    secretKeys: adopted,
  };
}
