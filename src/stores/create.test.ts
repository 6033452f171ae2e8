import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { ToolwardenError } from "../core/index.js";
import { createStateStore } from "./create.js";

const dir = mkdtempSync(join(tmpdir(), "tw-create-store-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("createStateStore", () => {
  it.each([
    { url: "memory:", kind: "memory" },
    { url: `sqlite:${join(dir, "a.db")}`, kind: "sqlite" },
    { url: `sqlite://${join(dir, "b.db")}`, kind: "sqlite" },
    { url: "sqlite::memory:", kind: "sqlite" },
  ])("$url opens a $kind store that works", async ({ url, kind }) => {
    const store = await createStateStore(url);
    try {
      expect(store.kind).toBe(kind);
      expect(await store.spend({ key: "k", amount: 0.25, max: 1 })).toEqual({
        ok: true,
        spent: 0.25,
        remaining: 0.75,
      });
    } finally {
      await store.close();
    }
  });

  it("a sqlite url keeps state in the named file", async () => {
    const url = `sqlite://${join(dir, "c.db")}`;
    const first = await createStateStore(url);
    await first.addSeen("s", ["private"]);
    await first.close();
    const second = await createStateStore(url);
    expect(await second.seen("s")).toEqual(["private"]);
    await second.close();
  });

  it.each(["", "postgres://localhost/db", "sqlite:", "file:/tmp/x.db"])(
    "refuses `%s` with code store_url",
    async (url) => {
      const error = await createStateStore(url).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ToolwardenError);
      expect((error as ToolwardenError).code).toBe("store_url");
    },
  );
});

describe("stores entry point", () => {
  // The core and `toolwarden` must not load ioredis or better-sqlite3: only the subpath entry points
  // and the lazy factory may reach them. Follows static imports from src/stores/index.ts.
  it("statically imports neither ioredis nor better-sqlite3", () => {
    const seen = new Set<string>();
    const packages = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const source = readFileSync(file, "utf8");
      for (const match of source.matchAll(/^(?:import|export)\s[^;]*?\sfrom\s+"([^"]+)"/gms)) {
        const spec = match[1];
        if (spec.startsWith(".")) visit(resolve(dirname(file), spec.replace(/\.js$/, ".ts")));
        else packages.add(spec);
      }
    };
    visit(fileURLToPath(new URL("./index.ts", import.meta.url)));
    expect(seen.size).toBeGreaterThan(3);
    expect([...packages].filter((p) => p === "ioredis" || p === "better-sqlite3")).toEqual([]);
  });
});
