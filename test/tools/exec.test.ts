import { describe, expect, it } from "vitest";
import { exec } from "../../tools/process.js";

/**
 * `exec` writes its input to a child that may exit before reading it. The pipe then breaks
 * (EPIPE); unhandled, that error killed a whole rehearsal. The child's exit code is the answer.
 */
describe("exec with a child that never reads its input", () => {
  const input = "x".repeat(8 * 1024 * 1024); // far beyond a pipe's buffer, so the write must fail

  it("resolves with the exit code of a child that exits at once (true)", async () => {
    for (let i = 0; i < 5; i++) {
      await expect(exec("true", [], { input })).resolves.toEqual({ code: 0, stdout: "", stderr: "" });
    }
  });

  it("resolves with a non-zero exit and the child's output (sh -c 'echo no; exit 3')", async () => {
    await expect(exec("sh", ["-c", "echo no >&2; exit 3"], { input })).resolves.toEqual({ code: 3, stdout: "", stderr: "no\n" });
  });

  it("still feeds a child that reads its input", async () => {
    const result = await exec("wc", ["-c"], { input });
    expect(result).toMatchObject({ code: 0, stdout: `${input.length}\n` });
  });

  it("still rejects when the program does not exist", async () => {
    await expect(exec("no-such-program-tt", [], { input })).rejects.toMatchObject({ code: "ENOENT" });
  });
});
