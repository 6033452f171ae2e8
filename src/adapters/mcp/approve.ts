import type { Client } from "@modelcontextprotocol/client";
import { fingerprintChanges, fingerprintTool } from "./pins.js";
import type { PinEntry, PinLedger } from "./pins.js";
import type { ListedTool } from "./risk.js";
import { connectUpstream } from "./upstream.js";
import type { UpstreamSpec } from "./upstream.js";

export interface ApproveResult {
  /** Tools the server listed. */
  listed: number;
  written: PinEntry[];
  /** One line per tool: what changed against its previous pin. */
  changes: string[];
  /** Requested tool names the server does not list. */
  missing: string[];
}

/**
 * `toolwarden mcp pins approve`: starts (or dials) the server, reads its tools as they are now and
 * pins them (all, or the named ones). The fingerprint comes from the server itself, never from the
 * command line, so an approval pins exactly what the model will read.
 */
export async function approveTools(
  ledger: PinLedger,
  server: string,
  upstream: UpstreamSpec,
  options: { tools?: string[]; by: string; reason?: string; timeout?: number },
): Promise<ApproveResult> {
  const client = await connectUpstream(upstream, { timeout: options.timeout, stderr: "ignore" });
  let tools: ListedTool[];
  try {
    tools = await listAllTools(client);
  } finally {
    await client.close();
  }
  const wanted = options.tools ? new Set(options.tools) : undefined;
  const chosen = wanted ? tools.filter((tool) => wanted.has(tool.name)) : tools;
  const missing = wanted ? [...wanted].filter((name) => !tools.some((tool) => tool.name === name)) : [];
  await ledger.refresh();
  const changes = chosen.map((tool) => {
    const pin = ledger.get(server, tool.name);
    if (!pin) return `+ ${tool.name}: new pin`;
    const changed = fingerprintChanges(pin, fingerprintTool(server, tool));
    return changed.length
      ? `~ ${tool.name}: ${changed.join(" and ")} changed; pinning the new version`
      : `= ${tool.name}: unchanged`;
  });
  for (const name of missing) changes.push(`! ${name}: not listed by \`${server}\``);
  const written = await ledger.pin(
    chosen.map((tool) => ({ server, tool })),
    options.by,
    options.reason,
  );
  return { listed: tools.length, written, changes, missing };
}

/** Most pages of `tools/list` read from one server (a server that pages forever is cut off). */
const MAX_PAGES = 100;

/** Every page of a server's `tools/list`. */
export async function listAllTools(client: Pick<Client, "request">): Promise<ListedTool[]> {
  const tools: ListedTool[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const result = await client.request({ method: "tools/list", params: cursor ? { cursor } : {} });
    tools.push(...(result.tools as ListedTool[]));
    cursor = result.nextCursor;
    if (!cursor) break;
  }
  return tools;
}
