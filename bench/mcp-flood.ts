/**
 * A server that floods notifications, with and without `toolwarden mcp proxy` in between (issue 17,
 * item 12). A v1 SDK client calls the fixture's `flood` tool (N logging notifications written as
 * fast as the pipe takes them), then at once calls `echo` and measures how long that next call takes.
 * Reports, per N: the flood call's duration, the next call's delay, the proxy's peak memory (VmHWM)
 * and the notifications the client received; the proxy's own count of dropped/coalesced ones is in
 * its stderr line. Each run is bounded by --timeout seconds.
 *
 *   node --import tsx bench/mcp-flood.ts [--counts 40000,100000,300000] [--timeout 120] [--json]
 */
import { readFileSync, writeFileSync } from "node:fs";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const TSX = pathToFileURL(join(ROOT, "node_modules/tsx/dist/loader.mjs")).href;
const FIXTURE = ["--import", TSX, join(ROOT, "test/mcp/fixtures/interop-server.ts")];
const CLI = ["--import", TSX, join(ROOT, "src/cli/main.ts")];

const { values } = parseArgs({
  options: {
    counts: { type: "string", default: "40000,100000,300000" },
    timeout: { type: "string", default: "120" },
    sdk: { type: "string", default: "v1" },
    json: { type: "boolean" },
  },
});
const counts = values.counts.split(",").map(Number);
const timeout = Number(values.timeout) * 1000;

interface Row {
  via: "direct" | "proxy";
  count: number;
  floodMs: number;
  nextCallMs: number;
  received: number;
  /** The proxy's peak memory before the flood (after start-up and one call). */
  proxyBaseMb?: number;
  proxyPeakMb?: number;
  proxyLog?: string;
  error?: string;
}

function peakMb(pid: number | null): number | undefined {
  if (!pid) return undefined;
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1]);
    return Math.round(kb / 1024);
  } catch {
    return undefined;
  }
}

async function run(via: Row["via"], count: number): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), "tw-flood-"));
  writeFileSync(join(dir, "policy.yaml"), "version: 1\ndefault: allow\n");
  const args =
    via === "direct"
      ? FIXTURE
      : [
          ...CLI,
          "mcp",
          "proxy",
          "-p",
          join(dir, "policy.yaml"),
          "--server-id",
          "flood",
          "--pins",
          join(dir, "pins.jsonl"),
          "--",
          process.execPath,
          ...FIXTURE,
        ];
  const transport = new StdioClientTransport({
    command: process.execPath,
    args,
    env: { ...(process.env as Record<string, string>), SDK: values.sdk },
    cwd: dir,
    stderr: "pipe",
  });
  let stderr = "";
  transport.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8");
  });
  const client = new Client({ name: "flood-bench", version: "1.0.0" }, { capabilities: {} });
  let received = 0;
  client.fallbackNotificationHandler = async () => {
    received++;
  };
  await client.connect(transport);
  await client.callTool({ name: "echo", arguments: { message: "warm" } });
  const row: Row = { via, count, floodMs: Number.NaN, nextCallMs: Number.NaN, received: 0 };
  if (via === "proxy") row.proxyBaseMb = peakMb(transport.pid);
  try {
    const t0 = performance.now();
    await client.callTool({ name: "flood", arguments: { count } }, undefined, { timeout });
    const t1 = performance.now();
    await client.callTool({ name: "echo", arguments: { message: "next" } }, undefined, { timeout });
    const t2 = performance.now();
    row.floodMs = Math.round(t1 - t0);
    row.nextCallMs = Math.round((t2 - t1) * 10) / 10;
    if (via === "proxy") row.proxyPeakMb = peakMb(transport.pid);
  } catch (error) {
    row.error = (error as Error).message;
  }
  row.received = received;
  const pid = transport.pid;
  const exited = new Promise<void>((resolve) => {
    if (!pid) return resolve();
    const poll = setInterval(() => {
      try {
        process.kill(pid, 0);
      } catch {
        clearInterval(poll);
        resolve();
      }
    }, 50);
  });
  if (pid) process.kill(pid, "SIGTERM");
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
  await client.close().catch(() => {});
  if (via === "proxy") row.proxyLog = stderr.split("\n").find((line) => line.includes("did not keep up"));
  return row;
}

const rows: Row[] = [];
for (const count of counts) {
  for (const via of ["direct", "proxy"] as const) {
    const row = await run(via, count);
    rows.push(row);
    if (!values.json)
      process.stdout.write(
        `${via.padEnd(6)} ${String(count).padStart(7)} notifications: flood call ${row.floodMs} ms, next call ${row.nextCallMs} ms, client received ${row.received}${row.proxyPeakMb ? `, proxy peak ${row.proxyBaseMb} -> ${row.proxyPeakMb} MB` : ""}${row.error ? `, error: ${row.error}` : ""}${row.proxyLog ? `\n       ${row.proxyLog}` : ""}\n`,
      );
  }
}
if (values.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
