import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli, type ServeProcess, startServe, tempDir, writePolicy } from "./procs.js";

/**
 * Issue 17 items 8-9 through the real CLI: an uploaded policy may only extend policies stored on
 * the server (by hash or name), never a path; policy files are read with a size bound and only
 * when they are regular files; nesting is bounded before parsing, with a clear message.
 */
const BASE = "version: 1\nname: base\ndefault: deny\nallow: [search]\n";

describe("policy uploads", () => {
  const tmp = tempDir("tw-uploads-");
  let serve: ServeProcess;
  const upload = (source: string, path = "/v1/policy/versions") =>
    serve.request("POST", path, { key: serve.adminKey, body: { source } });

  beforeAll(async () => {
    writeFileSync(join(tmp.dir, "shared.yaml"), "version: 1\nname: shared\nallow: [read_docs]\n");
    serve = await startServe({
      policy: writePolicy(tmp.dir, `${BASE}extends: [./shared.yaml]\n`),
      dataDir: join(tmp.dir, "data"),
    });
  }, 60_000);
  afterAll(async () => {
    await serve?.stop(true);
    tmp.remove();
  });

  it.each([
    ["/dev/zero", "/dev/zero"],
    ["/etc/passwd", "/etc/passwd"],
    ["the data dir's admin key", join(tmp.dir, "data/admin.key")],
    ["a relative path next to the server's policy", "./shared.yaml"],
  ])("`extends` naming a path (%s) is refused", async (_, path) => {
    for (const route of ["/v1/policy/versions", "/v1/policy/validate"]) {
      const res = await upload(`version: 1\nname: evil\nextends: [${JSON.stringify(path)}]\n`, route);
      expect(res.status).toBe(422);
      expect(res.body.error.message).toMatch(/extends.*stored polic/);
      expect(res.text).not.toMatch(/root:|x:0:0/);
    }
    expect((await serve.request("GET", "/health")).status).toBe(200);
  });

  it("an upload extends a stored version by hash or by name", async () => {
    const versions = (await serve.request("GET", "/v1/policy/versions", { key: serve.adminKey })).body
      .versions;
    const base = versions.find((v: { name: string }) => v.name === "base");
    for (const ref of [base.hash, base.hash.slice(0, 12), "base"]) {
      const res = await upload(
        `version: 1\nname: child\nextends: [${JSON.stringify(ref)}]\nallow: [extra]\n`,
      );
      expect([res.status, res.body.error?.message]).toEqual([201, undefined]);
    }
    const dry = await serve.request("POST", "/v1/policy/validate", {
      key: serve.adminKey,
      body: { source: `version: 1\nname: child\nextends: [${JSON.stringify(base.hash)}]\n` },
    });
    expect(dry.body.valid).toBe(true);
    const missing = await upload('version: 1\nname: child\nextends: ["nope"]\n');
    expect(missing.status).toBe(422);
    expect(missing.body.error.message).toMatch(/no stored policy `nope`/);
  });

  it.each([
    ["JSON objects 100,000 deep", `{"version": 1, "x": ${'{"a":'.repeat(100_000)}1${"}".repeat(100_000)}}`],
    ["YAML flow sequences 100,000 deep", `version: 1\nx: ${"[".repeat(100_000)}${"]".repeat(100_000)}\n`],
    ["YAML block sequences 5,000 deep", `version: 1\nx:\n${"- ".repeat(5_000)}1\n`],
  ])("%s: 422 with a clear message, before parsing", async (_, source) => {
    const res = await upload(source);
    expect(res.status).toBe(422);
    expect(res.body.error.message).toMatch(/nested deeper than 128 levels/);
    expect(res.body.error.message).not.toMatch(/call stack/);
  });
});

describe("policy files on the server", () => {
  const tmp = tempDir("tw-policy-files-");
  afterAll(() => tmp.remove());

  it("`extends` of a device, a directory or a file over the size bound fails with a message", () => {
    writeFileSync(join(tmp.dir, "huge.yaml"), `version: 1\n# ${"x".repeat(9 * 1024 * 1024)}\n`);
    for (const [target, message] of [
      ["/dev/zero", /not a regular file/],
      [tmp.dir, /not a regular file/],
      ["./huge.yaml", /larger than/],
    ] as const) {
      const policy = writePolicy(tmp.dir, `version: 1\nextends: [${JSON.stringify(target)}]\n`, "p.yaml");
      const result = cli(["validate", policy]);
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(message);
    }
  });
});
