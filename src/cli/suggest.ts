import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseRecordLine } from "../audit/query.js";
import type { AuditRecord } from "../audit/types.js";
import { addAuditRecords, addTrace, emptyObservations, isAuditLog, suggestPolicy } from "../learn/index.js";
import type { Observations, ToolAnnotations } from "../learn/index.js";
import { replayObservations } from "../learn/suggest.js";
import { compilePolicyFile } from "../policy/index.js";
import { diffPolicies } from "../policy-tools/index.js";
import { CliError, parseFlags, readInput } from "./util.js";
import type { Command } from "./util.js";
import { help } from "./validate.js";

export const suggest: Command = {
  summary: "write a least-privilege policy from traces or audit logs",
  usage:
    "toolwarden suggest TRACE_OR_LOG... [-o FILE] [--against POLICY] [--name NAME] [--include-denied] [--generalize] [--tools TOOLS.json] [--pins PINS.jsonl] [--schema S] [--chain C]",
  options: [
    "TRACE_OR_LOG...         replay traces (.jsonl), audit logs (.jsonl), SQLite audit (.db) or postgres:// URLs; folders of .jsonl",
    "-o, --output FILE       write the policy here (default: stdout)",
    "--against POLICY        what would change from POLICY, and the observed calls it refuses",
    "--name NAME             the policy's name (default: suggested)",
    "--include-denied        also learn from calls the observing policy denied",
    "--generalize            admit values like those seen: shapes, names left free, numbers to the next power of ten",
    "--tools TOOLS.json      MCP tool annotations (a tools/list result) for labels and sinks",
    "--pins PINS.jsonl       the annotations the MCP gateway pinned, for labels and sinks",
    "--schema S              PostgreSQL: the audit schema (default toolwarden_audit)",
    "--chain C               SQLite/PostgreSQL: the audit chain (default main)",
  ],
  async run(argv) {
    const { values, positionals } = parseFlags(
      argv,
      {
        output: { type: "string", short: "o" },
        against: { type: "string" },
        name: { type: "string" },
        "include-denied": { type: "boolean" },
        generalize: { type: "boolean" },
        tools: { type: "string" },
        pins: { type: "string" },
        schema: { type: "string" },
        chain: { type: "string" },
      },
      this.usage,
    );
    if (values.help) return help(this);
    if (!positionals.length) throw new CliError(`no trace or audit log given\nusage: ${this.usage}`);
    const observations = emptyObservations();
    for (const input of positionals) await addInput(observations, input, values);
    if (![...observations.sessions.values()].some((steps) => steps.some((s) => s.kind === "call")))
      throw new CliError("no tool calls in the input");
    const suggestion = await suggestPolicy(observations, {
      name: values.name,
      includeDenied: values["include-denied"],
      generalize: values.generalize,
      annotations: {
        ...(values.pins ? await pinnedAnnotations(values.pins) : {}),
        ...(values.tools ? readAnnotations(values.tools) : {}),
      },
    });
    if (values.output) writeFileSync(values.output, suggestion.yaml);
    else process.stdout.write(suggestion.yaml);
    if (values.against) {
      const current = compilePolicyFile(values.against);
      const lines: string[] = [`what would change from ${values.against}:`];
      const changes = await diffPolicies(current, suggestion.compiled);
      lines.push(...(changes.length ? changes : ["no changes"]));
      const refused = replayObservations(current, observations).filter(
        ({ decision }) => decision.verdict !== "allow" && decision.verdict !== "flag",
      );
      lines.push("", `observed calls ${values.against} does not allow: ${refused.length}`);
      for (const { call, decision } of refused)
        lines.push(
          `  ${call.where} ${call.tool}: ${decision.verdict} by ${decision.rule ?? "default"}: ${decision.reason}`,
        );
      const text = `${lines.join("\n")}\n`;
      if (values.output) process.stdout.write(text);
      else process.stderr.write(text);
    }
    if (values.output)
      process.stderr.write(
        `wrote ${values.output}: ${suggestion.learned} calls learned from, ${suggestion.notLearned.length} not (denied)\n`,
      );
    return 0;
  },
};

async function addInput(
  into: Observations,
  input: string,
  options: { schema?: string; chain?: string },
): Promise<void> {
  if (/^postgres(ql)?:\/\//.test(input)) {
    const { PostgresAuditReader } = await import("../server/audit-reader.js");
    const reader = await PostgresAuditReader.open(input, { schema: options.schema, chain: options.chain });
    try {
      addAuditRecords(into, await readAll(reader), input.replace(/\/\/[^@/]*@/, "//"));
    } finally {
      await reader.close();
    }
    return;
  }
  let stat: ReturnType<typeof statSync>;
  try {
    stat = statSync(input);
  } catch {
    throw new CliError(`cannot read \`${input}\`: no such file`);
  }
  if (stat.isDirectory()) {
    const files = readdirSync(input)
      .filter((f) => f.endsWith(".jsonl"))
      .sort();
    if (!files.length) throw new CliError(`no .jsonl files in \`${input}\``);
    for (const file of files) await addInput(into, join(input, file), options);
    return;
  }
  if (/\.(db|sqlite3?)$/.test(input)) {
    const { SqliteAuditReader } = await import("../server/audit-reader.js");
    const reader = await SqliteAuditReader.open(input, options.chain);
    try {
      addAuditRecords(into, await readAll(reader), input);
    } finally {
      await reader.close();
    }
    return;
  }
  const text = readInput(input);
  if (isAuditLog(text)) {
    const records = text
      .split("\n")
      .map(parseRecordLine)
      .filter((r): r is AuditRecord => r !== undefined);
    addAuditRecords(into, records, input);
  } else addTrace(into, text, input);
}

/** Every decision record of a database sink (in a period), oldest first. */
export async function readAll(
  reader: {
    query(filter: {
      kind?: string;
      before?: number;
      limit?: number;
      since?: string;
      until?: string;
    }): Promise<{ records: AuditRecord[]; next?: number }>;
  },
  range: { since?: string; until?: string } = {},
): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  let before: number | undefined;
  for (;;) {
    const page = await reader.query({ kind: "decision", before, limit: 1000, ...range });
    out.push(...page.records);
    if (page.next === undefined) break;
    before = page.next;
  }
  return out.reverse();
}

/** `--pins`: the annotations the gateway pinned for each tool (the MCP servers the audited calls went to). */
async function pinnedAnnotations(file: string): Promise<Record<string, ToolAnnotations>> {
  const { PinLedger } = await import("../adapters/mcp/pins.js");
  const ledger = await PinLedger.open(file, { readOnly: true });
  const out: Record<string, ToolAnnotations> = {};
  for (const pin of ledger.list()) {
    if (pin.annotations && typeof pin.annotations === "object")
      out[pin.tool] = pin.annotations as ToolAnnotations;
  }
  return out;
}

/** `--tools`: an MCP `tools/list` result (`{tools: [...]}`) or a list of tools, each with `annotations`. */
function readAnnotations(file: string): Record<string, ToolAnnotations> {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new CliError(`cannot read \`${file}\`: ${(error as Error).message}`);
  }
  const list = Array.isArray(value) ? value : (value as { tools?: unknown })?.tools;
  if (!Array.isArray(list))
    throw new CliError(`\`${file}\`: expected a tools/list result or a list of tools`);
  const out: Record<string, ToolAnnotations> = {};
  for (const tool of list as Array<{ name?: unknown; annotations?: unknown }>) {
    if (typeof tool?.name === "string" && tool.annotations && typeof tool.annotations === "object")
      out[tool.name] = tool.annotations as ToolAnnotations;
  }
  return out;
}
