import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FILESYSTEM, INTEROP, proxied, tempDir, text } from "./helpers.js";
import type { Proxied } from "./helpers.js";

// A made-up token in GitHub's format, in a file the reference filesystem server returns.
const TOKEN = "ghp_Xq7Lm2Pz9Rt4Vw8Ky1Nb6Hc3Jd5Fg0aB1cD2";

describe("mcp proxy: output detectors in front of the reference filesystem server", () => {
  let proxy: Proxied;
  let root: string;
  beforeAll(async () => {
    const dir = tempDir();
    root = tempDir("tw-mcp-files-");
    writeFileSync(join(root, ".env"), `NODE_ENV=production\nGITHUB_TOKEN=${TOKEN}\n`);
    writeFileSync(
      join(root, "id_ed25519.ppk"),
      "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: k\nPublic-Lines: 1\nAAAAC3NzaC1lZDI1NTE5AAAAIBp3Qm2Pz9Rt4Vw8Ky1Nb6Hc3Jd5Fg0aB1cD2eF3gH4\nPrivate-Lines: 1\nAAAAIGp3Qm2Pz9Rt4Vw8Ky1Nb6Hc3Jd5Fg0aB1cD2eF3gH4iJ5\nPrivate-MAC: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n",
    );
    writeFileSync(join(root, "notes.txt"), "meeting at noon\n");
    proxy = await proxied({
      serverId: "files",
      server: FILESYSTEM(root),
      dir,
      policy: `version: 1
default: allow
detect:
  secrets: { args: deny, outputs: mask }
tools:
  read_media_file:
    detect:
      secrets: { outputs: deny }
`,
    });
  });
  afterAll(() => proxy?.close());

  it("the client sees the token masked, clean files unchanged, and the audit records the masking", async () => {
    const env = text(
      await proxy.client.callTool({ name: "read_text_file", arguments: { path: join(root, ".env") } }),
    );
    expect(env).toBe("NODE_ENV=production\nGITHUB_TOKEN=[REDACTED]\n");
    const key = text(
      await proxy.client.callTool({
        name: "read_text_file",
        arguments: { path: join(root, "id_ed25519.ppk") },
      }),
    );
    expect(key).toBe("[REDACTED]\n");
    expect(
      text(
        await proxy.client.callTool({ name: "read_text_file", arguments: { path: join(root, "notes.txt") } }),
      ),
    ).toBe("meeting at noon\n");

    await proxy.close();
    const audit = proxy.audit();
    const outputs = audit.filter((r) => r.kind === "output");
    expect(outputs).toEqual([
      expect.objectContaining({
        tool: "read_text_file",
        data: { detected: ["secret.github_token"], action: "masked" },
      }),
      expect.objectContaining({
        tool: "read_text_file",
        data: { detected: ["secret.private_key"], action: "masked" },
      }),
    ]);
    expect(JSON.stringify(audit)).not.toContain(TOKEN);
  });
});

describe("mcp proxy: output detectors on resources/read", () => {
  let proxy: Proxied;
  beforeAll(async () => {
    proxy = await proxied({
      serverId: "interop",
      server: INTEROP,
      env: { SDK: "v1" },
      policy: "version: 1\ndefault: allow\ndetect:\n  secrets: { outputs: mask }\n",
    });
  });
  afterAll(() => proxy?.close());

  it("a resource's contents reach the client masked, and the masking is audited", async () => {
    // The fixture's file template answers `contents of <path>`: the path carries the token.
    const read = await proxy.client.readResource({ uri: `file:///${TOKEN}` });
    expect(read.contents[0]).toMatchObject({ text: "contents of /[REDACTED]" });
    await proxy.close();
    const outputs = proxy.audit().filter((r) => r.kind === "output");
    expect(outputs).toEqual([
      expect.objectContaining({
        tool: "resources/read",
        data: { detected: ["secret.github_token"], action: "masked" },
      }),
    ]);
  });
});
