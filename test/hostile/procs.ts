import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cliPath, ROOT } from "../setup/built-cli.js";

/**
 * Real processes for the hostile-client and fault tests: the built CLI (`dist/`, rebuilt by the global
 * setup when stale) and a private `redis-server` each test starts on its own free port and stops by
 * PID. Never the shared Redis.
 */
export { cliPath, ROOT };

/** Every process started here, killed (by PID) when this process exits, even after a failed assertion. */
const started = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of started)
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
});
function track(child: ChildProcess): ChildProcess {
  started.add(child);
  child.once("exit", () => started.delete(child));
  return child;
}

export function tempDir(prefix: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  ms = 15_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export { until };

/** A private redis-server on a free port, no persistence. */
export interface PrivateRedis {
  port: number;
  url: string;
  pid: number;
  /** SIGKILL and wait for the exit. */
  kill(): Promise<void>;
  /** SIGSTOP / SIGCONT: a frozen server keeps its connections and answers nothing. */
  freeze(): void;
  thaw(): void;
  /** Starts it again on the same port (after `kill`). */
  restart(): Promise<void>;
}

export async function startRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  let child: ChildProcess;
  const launch = async () => {
    child = track(
      spawn(
        "redis-server",
        ["--port", String(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
        {
          stdio: "ignore",
        },
      ),
    );
    await until(`redis-server on ${port}`, async () => {
      const ok = await new Promise<boolean>((res) => {
        const sock = connect(port, "127.0.0.1");
        sock.once("connect", () => {
          sock.write("PING\r\n");
        });
        sock.once("data", (d: Buffer) => {
          sock.destroy();
          res(d.toString().startsWith("+PONG"));
        });
        sock.once("error", () => res(false));
      });
      return ok || undefined;
    });
  };
  await launch();
  const redis: PrivateRedis = {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    get pid() {
      return child.pid as number;
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      process.kill(child.pid as number, "SIGKILL");
      await exited;
    },
    freeze() {
      process.kill(child.pid as number, "SIGSTOP");
    },
    thaw() {
      process.kill(child.pid as number, "SIGCONT");
    },
    restart: launch,
  };
  return redis;
}

/** `toolwarden serve` from dist on a free port with its own data dir; stderr is collected. */
export interface ServeProcess {
  url: string;
  port: number;
  dataDir: string;
  adminKey: string;
  child: ChildProcess;
  stderr(): string;
  stdout(): string;
  request(
    method: string,
    path: string,
    options?: { key?: string; body?: unknown; raw?: string },
  ): Promise<{ status: number; body: any; text: string }>;
  /** SIGTERM and wait; SIGKILL with `kill9`. */
  stop(kill9?: boolean): Promise<number | null>;
}

export async function startServe(options: {
  policy: string;
  dataDir: string;
  args?: string[];
  env?: Record<string, string>;
}): Promise<ServeProcess> {
  const port = await freePort();
  const child = track(
    spawn(
      process.execPath,
      [
        cliPath(),
        "serve",
        "-p",
        options.policy,
        "--port",
        String(port),
        "--data",
        options.dataDir,
        "--no-watch",
        ...(options.args ?? []),
      ],
      { cwd: ROOT, env: { ...process.env, ...options.env }, stdio: ["ignore", "pipe", "pipe"] },
    ),
  );
  let err = "";
  let out = "";
  child.stderr?.on("data", (d) => {
    err += d;
  });
  child.stdout?.on("data", (d) => {
    out += d;
  });
  const url = `http://127.0.0.1:${port}`;
  await until(
    "serve to listen",
    async () => {
      if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode}: ${err}`);
      try {
        await fetch(`${url}/health`);
        return true;
      } catch {
        return undefined;
      }
    },
    30_000,
  );
  const adminKey = readFileSync(join(options.dataDir, "admin.key"), "utf8").trim();
  const request: ServeProcess["request"] = async (method, path, opts = {}) => {
    const headers: Record<string, string> = {};
    if (opts.key) headers.Authorization = `Bearer ${opts.key}`;
    let body = opts.raw;
    if (opts.body !== undefined) body = JSON.stringify(opts.body);
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(`${url}${path}`, { method, headers, body });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: response.status, body: parsed, text };
  };
  return {
    url,
    port,
    dataDir: options.dataDir,
    adminKey,
    child,
    stderr: () => err,
    stdout: () => out,
    request,
    async stop(kill9 = false) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
      process.kill(child.pid as number, kill9 ? "SIGKILL" : "SIGTERM");
      return exited;
    },
  };
}

/** Runs the built CLI to completion. */
export function cli(
  args: string[],
  input?: string,
): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [cliPath(), ...args], {
    cwd: ROOT,
    encoding: "utf8",
    input,
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

export function writePolicy(dir: string, text: string, name = "policy.yaml"): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}
