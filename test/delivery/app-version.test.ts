import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { REVISION_LABEL } from "../../infra/components/app.js";
import { planFor } from "../../infra/model/catalog.js";
import { APP_VERSION_FILE, readAppVersion } from "../../infra/program.js";
import { catalog } from "../../stacks/catalog.js";
import { mockConfig } from "../../tools/mock-config.js";
import { runProgram } from "../../tools/mock-engine.js";
import { removeTree } from "../scratch.js";

/**
 * The app version is pinned in this repository (app-version.json), for every stack: the
 * program labels each image it builds with that commit and reports it as the stack output
 * `appCommit`. (The workflows check out exactly that commit: test/delivery/workflows.test.ts.)
 */

const REPO = resolve(import.meta.dirname, "../..");
const PLACEHOLDER = "0".repeat(40);
const IMAGE = "docker:index/remoteImage:RemoteImage";
const scratch = mkdtempSync(join(tmpdir(), "app-version-test-"));
afterAll(() => removeTree(scratch));

const pinned = () => JSON.parse(readFileSync(join(REPO, "app-version.json"), "utf8")) as Record<string, unknown>;

/** The program's run for each stack, once: both tests of a stack only read it. */
const runs = new Map<string, ReturnType<typeof runProgram>>();
const run = (stack: string) => {
  const { config, secretKeys } = mockConfig(planFor(catalog, stack));
  return runs.get(stack) ?? runs.set(stack, runProgram(stack, config, secretKeys)).get(stack)!;
};

describe("app-version.json", () => {
  it("is at the repository root, and is what the program reads", () => {
    expect(APP_VERSION_FILE).toBe(join(REPO, "app-version.json"));
  });

  it("holds exactly the app's repository and a full commit (or the documented placeholder)", () => {
    const file = pinned();
    expect(Object.keys(file).sort()).toEqual(["commit", "repository"]);
    expect(file.repository).toMatch(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/);
    expect(file.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(readAppVersion()).toEqual(file);
    if (file.commit === PLACEHOLDER) {
      // Not pinned yet: the runbook says how to set it, and the workflows refuse to deploy it.
      const runbook = readFileSync(join(REPO, "docs/promote-staging-to-production.md"), "utf8");
      expect(runbook).toContain(PLACEHOLDER);
      expect(runbook).toContain("app-version.json");
    }
  });

  it("is refused with the reason when it is not a pin: a branch, a short commit, a bare name, no JSON", () => {
    const sha = "0123456789abcdef0123456789abcdef01234567";
    const write = (content: string) => {
      const path = join(mkdtempSync(join(scratch, "pin-")), "app-version.json");
      writeFileSync(path, content);
      return path;
    };
    expect(readAppVersion(write(JSON.stringify({ repository: "acme/TimeTracker", commit: sha })))).toEqual({ repository: "acme/TimeTracker", commit: sha });
    expect(() => readAppVersion(write(JSON.stringify({ repository: "acme/TimeTracker", commit: "main" })))).toThrow(/"commit" must be a full 40-character/);
    expect(() => readAppVersion(write(JSON.stringify({ repository: "acme/TimeTracker", commit: sha.slice(0, 12) })))).toThrow(/"commit" must be/);
    expect(() => readAppVersion(write(JSON.stringify({ repository: "acme/TimeTracker", commit: sha.toUpperCase() })))).toThrow(/lower-case hex/);
    expect(() => readAppVersion(write(JSON.stringify({ repository: "TimeTracker", commit: sha })))).toThrow(/"repository" must be "<owner>\/<repo>"/);
    expect(() => readAppVersion(write("{ repository: acme }"))).toThrow(/cannot be read as JSON/);
  });
});

describe.each(catalog.map((d) => d.name))("the program for %s labels its images with the pinned commit (Pulumi mocks)", (stack) => {
  const plan = planFor(catalog, stack);

  it("every image it builds carries org.opencontainers.image.revision = the pinned commit; pulled images are untouched", async () => {
    const result = await run(stack);
    const { commit } = readAppVersion();
    expect(REVISION_LABEL).toBe("org.opencontainers.image.revision");
    const built = Object.values(plan.containers).filter((c) => c.image.source === "build");
    expect(built.map((c) => c.service).sort()).toEqual(["backend", "frontend"]);
    for (const c of Object.values(plan.containers)) {
      const image = result.one(IMAGE, `app-image-${c.service}`);
      const build = image.inputs.build as { label?: Record<string, string> } | undefined;
      if (c.image.source === "build") {
        expect(build?.label).toEqual({ [REVISION_LABEL]: commit });
      } else {
        expect(build).toBeUndefined();
      }
    }
  });

  it("reports the pinned commit as the stack output appCommit", async () => {
    const result = await run(stack);
    expect(result.outputs.appCommit).toBe(readAppVersion().commit);
  });
});

describe("the app's base images are pinned by digest", () => {
  it.each(["app-images/backend/Dockerfile", "app-images/frontend/Dockerfile"])("%s: every FROM names a tag and its digest, and says where the digest comes from", (path) => {
    const dockerfile = readFileSync(join(REPO, path), "utf8");
    const froms = [...dockerfile.matchAll(/^FROM\s+(\S+)/gim)].map((m) => m[1] ?? "");
    expect(froms.length).toBeGreaterThan(0);
    for (const ref of froms) expect(ref).toMatch(/^[a-z0-9./-]+:[A-Za-z0-9_.-]+@sha256:[0-9a-f]{64}$/);
    expect(dockerfile).toContain("docker-library/repo-info");
    expect(dockerfile).toMatch(/refresh/i);
  });
});
