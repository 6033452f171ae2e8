/**
 * Added latency of `toolwarden mcp proxy` per `tools/call`: the same client calls the reference
 * "everything" server's `echo` tool directly and through the proxy (policy with a flow rule and a
 * sink, pins checked, optionally the signed JSONL audit log), sequentially, and reports p50/p99.
 *
 *   node --import tsx bench/mcp-latency.ts [--calls 1000] [--json]
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const TSX = pathToFileURL(join(ROOT, "node_modules/tsx/dist/loader.mjs")).href;
const EVERYTHING = [
  join(ROOT, "node_modules/@modelcontextprotocol/server-everything/dist/index.js"),
  "stdio",
];
const POLICY = `version: 1
default: allow
servers:
  everything: { produces: [untrusted] }
tools:
  send_email: { sink: external }
rules:
  - name: no-untrusted-into-external-sinks
    when: { sink: external, flows: [untrusted] }
    verdict: deny
`;

const { values } = parseArgs({
  options: {
    calls: { type: "string", default: "1000" },
    warmup: { type: "string", default: "100" },
    json: { type: "boolean" },
  },
});
const calls = Number(values.calls);
const warmup = Number(values.warmup);

interface Result {
  name: string;
  p50: number;
  p99: number;
  mean: number;
}

async function measure(
  name: string,
  command: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<Result> {
  const transport = new StdioClientTransport({
    command,
    args,
    env: { ...(process.env as Record<string, string>), ...env },
    stderr: "ignore",
  });
  const client = new Client({ name: "bench", version: "1" }, { capabilities: {} });
  await client.connect(transport);
  await client.listTools();
  const once = async (i: number) => {
    const started = process.hrtime.bigint();
    await client.callTool({ name: "echo", arguments: { message: `call ${i}` } });
    return Number(process.hrtime.bigint() - started) / 1000;
  };
  for (let i = 0; i < warmup; i++) await once(i);
  const samples: number[] = [];
  for (let i = 0; i < calls; i++) samples.push(await once(i));
  await client.close();
  samples.sort((a, b) => a - b);
  const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))];
  return { name, p50: at(0.5), p99: at(0.99), mean: samples.reduce((a, b) => a + b, 0) / samples.length };
}

const dir = mkdtempSync(join(tmpdir(), "tw-mcp-bench-"));
writeFileSync(join(dir, "policy.yaml"), POLICY);
const proxy = (extra: string[]) => [
  "--import",
  TSX,
  join(ROOT, "src/cli/main.ts"),
  "mcp",
  "proxy",
  "-p",
  join(dir, "policy.yaml"),
  "--server-id",
  "everything",
  "--pins",
  join(dir, "pins.jsonl"),
  ...extra,
  "--",
  process.execPath,
  ...EVERYTHING,
];
const key = { TOOLWARDEN_AUDIT_KEY: "bench-audit-key-0123456789abcdef" };

const direct = await measure("direct", process.execPath, EVERYTHING);
const proxied = await measure("proxy", process.execPath, proxy([]), key);
const audited = await measure(
  "proxy + audit",
  process.execPath,
  proxy(["--audit", join(dir, "audit.jsonl")]),
  key,
);

const rows = [direct, proxied, audited].map((r) => ({
  ...r,
  addedP50: r.p50 - direct.p50,
  addedP99: r.p99 - direct.p99,
  ratioP50: r.p50 / direct.p50,
  ratioP99: r.p99 / direct.p99,
}));
if (values.json) process.stdout.write(`${JSON.stringify({ calls, rows }, null, 2)}\n`);
else {
  const us = (n: number) => `${Math.round(n)} µs`;
  process.stdout.write(
    `tools/call latency, ${calls} sequential calls of everything/echo (after ${warmup} warm-up calls)\n`,
  );
  process.stdout.write(
    `${"path".padEnd(14)} ${"p50".padStart(9)} ${"p99".padStart(9)} ${"mean".padStart(9)} ${"+p50".padStart(9)} ${"+p99".padStart(9)} ${"x p50".padStart(6)} ${"x p99".padStart(6)}\n`,
  );
  for (const r of rows) {
    process.stdout.write(
      `${r.name.padEnd(14)} ${us(r.p50).padStart(9)} ${us(r.p99).padStart(9)} ${us(r.mean).padStart(9)} ${us(r.addedP50).padStart(9)} ${us(r.addedP99).padStart(9)} ${r.ratioP50.toFixed(2).padStart(6)} ${r.ratioP99.toFixed(2).padStart(6)}\n`,
    );
  }
}
