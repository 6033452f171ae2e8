import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ServerOptions, startServer, type ToolwardenServer } from "../../src/server/index.js";
import type { Role } from "../../src/server/index.js";

export const FIXTURE_POLICY = new URL("./fixtures/policy.yaml", import.meta.url).pathname;

/** A server on a free loopback port with its own data directory, plus an HTTP client for it. */
export interface TestServer {
  server: ToolwardenServer;
  url: string;
  dir: string;
  adminKey: string;
  /** Creates a key through the admin API. */
  key(role: Role, agent?: string, name?: string, attrs?: Record<string, unknown>): Promise<string>;
  request(
    method: string,
    path: string,
    options?: { key?: string; body?: unknown; raw?: string; headers?: Record<string, string> },
  ): Promise<{ status: number; body: any; headers: Headers }>;
  close(): Promise<void>;
}

export async function startTestServer(options: Partial<ServerOptions> = {}): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), "tw-server-"));
  const server = await startServer({
    policy: FIXTURE_POLICY,
    port: 0,
    dataDir: join(dir, "data"),
    log: () => {},
    watch: false,
    env: {},
    ...options,
  });
  const adminKey = readFileSync(server.paths.adminKeyFile, "utf8").trim();
  const request: TestServer["request"] = async (method, path, opts = {}) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.key !== undefined) headers.Authorization = `Bearer ${opts.key}`;
    let body: string | undefined = opts.raw;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers["Content-Type"] = "application/json";
    }
    const response = await fetch(`${server.url}${path}`, { method, headers, body });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON (metrics, HTML)
    }
    return { status: response.status, body: parsed, headers: response.headers };
  };
  return {
    server,
    url: server.url,
    dir,
    adminKey,
    async key(role, agent, name = `${role}-${agent ?? "key"}`, attrs) {
      const { status, body } = await request("POST", "/v1/keys", {
        key: adminKey,
        body: { role, name, agent, attrs },
      });
      if (status !== 201) throw new Error(`cannot create key: ${JSON.stringify(body)}`);
      return body.key as string;
    },
    request,
    async close() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Audit records in the queryable sink once everything appended so far is written. */
export async function auditCount(t: TestServer): Promise<number> {
  await t.server.audit.flush();
  return t.server.reader.count();
}
