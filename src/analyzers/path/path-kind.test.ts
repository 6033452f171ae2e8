import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Finding } from "../../core/index.js";
import { type PathOptions, pathKind } from "./index.js";

function findings(value: unknown, options: PathOptions): Finding[] {
  const out: Finding[] = [];
  pathKind.compile(pathKind.options.parse(options))(value, "path", out);
  return out;
}
const codes = (value: unknown, options: PathOptions) => findings(value, options).map((f) => f.code);

const workspace: PathOptions = { within: ["/workspace"] };

describe("path: traversal and encoding attempts", () => {
  it.each([
    ["../etc/passwd", "path.outside"],
    ["/workspace/../etc/passwd", "path.outside"],
    ["/workspace/a/../../etc", "path.outside"],
    ["/workspace-evil/x", "path.outside"],
    ["/workspace2", "path.outside"],
    ["/", "path.outside"],
    ["/workspace\\..\\..\\etc\\passwd", "path.outside"],
    ["..\\..\\etc\\passwd", "path.outside"],
    ["/workspace\\x", "path.outside"], // literally the entry `workspace\x` in `/`
    ["/workspace/%2e%2e/etc", "path.outside"],
    ["/workspace/..%2f..%2fetc", "path.outside"],
    ["/workspace/%252e%252e/%252e%252e/etc", "path.outside"],
    ["/workspace/%25252e%25252e/etc", "path.outside"],
    ["/workspace/\uff0e\uff0e\uff0f\uff0e\uff0e\uff0fetc", "path.outside"],
    ["/workspace/..\u2215..\u2215etc", "path.outside"],
    ["/workspace/%ef%bc%8e%ef%bc%8e/etc", "path.outside"],
    ["/workspace\uff0fx", "path.outside"], // literally `/workspace／x`, a sibling of the root
    ["/workspace/x\u0000.txt", "path.nul"],
    ["/workspace/x%00.txt", "path.nul"],
    ["/workspace/x%2500.txt", "path.nul"],
    ["/workspace/%c0%ae%c0%ae/etc", "path.encoding"],
    ["/workspace/%e0%80%ae", "path.encoding"],
    ["/workspace/%c0%af", "path.encoding"],
    ["/workspace/%ed%a0%80", "path.encoding"], // an encoded surrogate
    ["/workspace/%c0", "path.encoding"],
    ["/workspace/%u002e%u002e/etc", "path.encoding"],
    ["/workspace/a\nb", "path.encoding"],
    ["/workspace/a%0d%0ab", "path.encoding"],
    ["/workspace/\ud800x", "path.encoding"],
    ["C:\\Windows\\win.ini", "path.unparsable"],
    ["c:/boot.ini", "path.unparsable"],
    ["\\\\server\\share\\x", "path.unparsable"],
    ["\\\\?\\C:\\x", "path.unparsable"],
    ["file:///etc/passwd", "path.unparsable"],
    ["jar:file:/x!/y", "path.unparsable"],
    ["~/.ssh/id_rsa", "path.unparsable"],
    ["~root", "path.unparsable"],
    ["%7e/.ssh", "path.unparsable"],
    ["$HOME/.ssh", "path.unparsable"],
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal shell expansion is the attack
    ["/workspace/${HOME}", "path.unparsable"],
    ["/workspace/$(id)", "path.unparsable"],
    ["/workspace/`id`", "path.unparsable"],
    ["", "path.unparsable"],
  ])("%j -> %s", (path, code) => {
    expect(codes(path, workspace)).toEqual([code]);
  });

  it.each([42, null, undefined, ["/workspace/a"], { path: "/workspace/a" }, "a".repeat(20_000)])(
    "refuses the non-path %#",
    (value) => {
      expect(codes(value, workspace)).toEqual(["path.unparsable"]);
    },
  );

  it("refuses more than a bounded number of encoding layers", () => {
    let dots = "..";
    for (let i = 0; i < 20; i++) dots = encodeURIComponent(dots.replace(/\./g, "%2e"));
    expect(codes(`/workspace/${dots}/etc`, workspace)).toEqual(["path.encoding"]);
  });

  it("explains what the path was read as", () => {
    const [finding] = findings("/workspace/%2e%2e/etc", workspace);
    expect(finding.message).toBe("`/workspace/%2e%2e/etc` (read as `/etc`) is outside /workspace");
    expect(findings("/workspace/x\u0000", workspace)[0].message).toContain("\\u{0}");
  });
});

describe("path: benign look-alikes pass", () => {
  it.each([
    "/workspace",
    "/workspace/",
    "/workspace/a.txt",
    "a.txt",
    "./src/../README.md",
    "/workspace/..foo",
    "/workspace/foo..",
    "/workspace/...",
    "/workspace//a//b",
    "/workspace/my file.txt",
    "/workspace/my%20file.txt",
    "/workspace/100%.txt",
    "/workspace/100%25.txt",
    "/workspace/a%2fb",
    "/workspace/caf\u00e9.txt",
    "/workspace/\ufb01le.txt",
    "/workspace/a\\b",
    "src\\index.ts",
    "/workspace/file~",
    "/workspace/a~b/c",
    "/workspace/price$.txt",
    "/workspace/a:b.txt",
    "/workspace/tmp/../../workspace/x",
  ])("%j", (path) => {
    expect(codes(path, workspace)).toEqual([]);
  });
});

describe("path: options", () => {
  it("allows several roots, and a root of / allows every absolute path", () => {
    const options = { within: ["/a", "/b/c/"] };
    expect(codes("/a/x", options)).toEqual([]);
    expect(codes("/b/c/x", options)).toEqual([]);
    expect(codes("/b/x", options)).toEqual(["path.outside"]);
    expect(codes("x", options)).toEqual([]); // relative: resolved against the first root
    expect(codes("/etc/passwd", { within: ["/"] })).toEqual([]);
  });

  it("allow_relative: false refuses relative paths", () => {
    const options = { within: ["/workspace"], allow_relative: false };
    expect(codes("a.txt", options)).toEqual(["path.outside"]);
    expect(codes("/workspace/a.txt", options)).toEqual([]);
  });

  it("deny globs: names at any depth, anchored paths, root-relative patterns, directories cover their contents", () => {
    const options = {
      within: ["/workspace"],
      deny: [".env", "*.pem", ".git", "/workspace/secrets", "config/*.key"],
    };
    expect(codes("/workspace/.env", options)).toEqual(["path.denied"]);
    expect(codes("/workspace/a/b/.ENV", options)).toEqual(["path.denied"]);
    expect(codes("/workspace/certs/x.pem", options)).toEqual(["path.denied"]);
    expect(codes("/workspace/.git", options)).toEqual(["path.denied"]);
    expect(codes("/workspace/.git/config", options)).toEqual(["path.denied"]);
    expect(codes("/workspace/secrets/a/b", options)).toEqual(["path.denied"]);
    expect(codes("/workspace/config/api.key", options)).toEqual(["path.denied"]);
    expect(codes("/workspace/%2eenv", options)).toEqual(["path.denied"]);
    expect(codes("/workspace/.gitignore", options)).toEqual([]);
    expect(codes("/workspace/.envrc", options)).toEqual([]);
    expect(codes("/workspace/secrets.md", options)).toEqual([]);
    expect(codes("/workspace/x/config/api.key", options)).toEqual([]);
  });

  it("deny works without roots, against / for relative input", () => {
    const options = { deny: ["/etc/**", "*.pem"] };
    expect(codes("/etc/passwd", options)).toEqual(["path.denied"]);
    expect(codes("etc/passwd", options)).toEqual(["path.denied"]);
    expect(codes("/home/me/key.pem", options)).toEqual(["path.denied"]);
    expect(codes("/home/me/notes.txt", options)).toEqual([]);
  });

  it("rejects relative roots, unknown keys and bad values", () => {
    expect(() => pathKind.compile(pathKind.options.parse({ within: ["workspace"] }))).toThrow(
      "within: `workspace` is not an absolute POSIX path",
    );
    expect(pathKind.options.safeParse({ root: ["/w"] }).success).toBe(false);
    expect(pathKind.options.safeParse({ within: [] }).success).toBe(false);
    expect(pathKind.options.safeParse({ realpath: "yes" }).success).toBe(false);
  });

  it("never throws, and findings are well formed", () => {
    const check = pathKind.compile(pathKind.options.parse({ within: ["/workspace"], deny: [".env"] }));
    const pathish = fc
      .tuple(
        fc.constantFrom("/workspace/", "", "/", "\\\\", "~", "C:"),
        fc.array(
          fc.constantFrom("..", ".", "%2e", "%25", "%c0%ae", "\uff0e", "\\", "/", "%00", "a", "$", "%u"),
          {
            maxLength: 8,
          },
        ),
        fc.string({ unit: "grapheme", maxLength: 12 }),
      )
      .map(([start, parts, tail]) => start + parts.join("") + tail);
    fc.assert(
      fc.property(fc.oneof(pathish, fc.string({ unit: "binary", maxLength: 40 }), fc.anything()), (value) => {
        const out: Finding[] = [];
        check(value, "path", out);
        const bad = out.filter((f) => !/^path\.[a-z]+$/.test(f.code) || f.arg !== "path" || f.message === "");
        if (bad.length > 0) throw new Error(`malformed findings ${JSON.stringify(bad)}`);
      }),
      { numRuns: 300 },
    );
  });
});

describe("path: realpath (symlinks on disk, the async half)", () => {
  let tmp: string;
  let ws: string;

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), "tw-path-"));
    ws = join(tmp, "ws");
    await mkdir(join(ws, "sub"), { recursive: true });
    await mkdir(join(ws, "secret"));
    await mkdir(join(tmp, "outside"));
    await writeFile(join(ws, "inside.txt"), "x");
    await writeFile(join(tmp, "outside", "passwd"), "x");
    await symlink(join(tmp, "outside"), join(ws, "link-out"));
    await symlink("sub", join(ws, "link-in"));
    await symlink(join(tmp, "outside", "new.txt"), join(ws, "dangling-out"));
    await symlink("sub/new.txt", join(ws, "dangling-in"));
    await symlink("loop-b", join(ws, "loop-a"));
    await symlink("loop-a", join(ws, "loop-b"));
    await symlink("secret", join(ws, "alias"));
    await symlink(ws, join(tmp, "ws-link"));
  });

  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  async function diskCodes(path: string, options: PathOptions): Promise<string[]> {
    const check = pathKind.compileAsync!(pathKind.options.parse({ ...options, realpath: true }))!;
    const out: Finding[] = [];
    await check(path, "path", out);
    return out.map((f) => f.code);
  }

  it("is absent unless realpath: true", () => {
    expect(pathKind.compileAsync!(pathKind.options.parse({ within: ["/w"] }))).toBeUndefined();
  });

  it.each([
    ["inside.txt", []],
    ["sub", []],
    ["link-in/new.txt", []],
    ["new-dir/new-file.txt", []],
    ["dangling-in", []],
    ["link-out", ["path.outside"]],
    ["link-out/passwd", ["path.outside"]],
    ["link-out/not-yet/created.txt", ["path.outside"]],
    ["dangling-out", ["path.outside"]],
    ["loop-a", ["path.unparsable"]],
  ])("%s -> %j", async (relative, expected) => {
    expect(await diskCodes(join(ws, relative), { within: [ws] })).toEqual(expected);
  });

  it("resolves relative input against the first root", async () => {
    expect(await diskCodes("link-out/passwd", { within: [ws] })).toEqual(["path.outside"]);
    expect(await diskCodes("inside.txt", { within: [ws] })).toEqual([]);
  });

  it("follows a root that is itself a symlink", async () => {
    const root = join(tmp, "ws-link");
    expect(await diskCodes(join(root, "inside.txt"), { within: [root] })).toEqual([]);
    expect(await diskCodes(join(root, "link-out", "passwd"), { within: [root] })).toEqual(["path.outside"]);
  });

  it("applies deny globs to the real path", async () => {
    const options = { within: [ws], deny: [`${ws}/secret`] };
    expect(await diskCodes(join(ws, "alias", "key"), options)).toEqual(["path.denied"]);
    expect(await diskCodes(join(ws, "inside.txt"), options)).toEqual([]);
  });

  it("says where the symlinks lead", async () => {
    const check = pathKind.compileAsync!(pathKind.options.parse({ within: [ws], realpath: true }))!;
    const out: Finding[] = [];
    await check(join(ws, "link-out", "passwd"), "path", out);
    expect(out[0].message).toContain(`through symlinks \`${join(tmp, "outside", "passwd")}\``);
  });

  it("leaves unreadable input to the synchronous half", async () => {
    expect(await diskCodes("/workspace/\u0000", { within: [ws] })).toEqual([]);
    expect(await diskCodes(42 as unknown as string, { within: [ws] })).toEqual([]);
  });
});
