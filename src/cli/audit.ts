import { parseArgs } from "node:util";
import { hmacRole } from "../audit/chain.js";
import {
  type AuditFilter,
  AuditKeyError,
  type AuditRecord,
  auditFiles,
  followAudit,
  queryAudit,
  resolveAuditKey,
  shareReceipt,
  tailAudit,
  verifyAuditLog,
} from "../audit/index.js";
import { canonicalJson, isVerdict, type Verdict } from "../core/index.js";
import { plural } from "./util.js";

const USAGE = `usage:
  toolwarden audit verify LOG... [--audit-key-file F | --key-file F] [--unsigned]
  toolwarden audit tail LOG [-n N] [--follow] [--json]
  toolwarden audit query LOG... [--agent A] [--tool T] [--verdict V] [--since ISO] [--until ISO] [--session S] [--kind K] [--observed] [--json]
  toolwarden audit receipt LOG --seq N
  toolwarden audit stats LOG|DB... [--rules] [-p POLICY] [--since ISO] [--until ISO] [--json]

A LOG that has rotated siblings (audit.1.jsonl, audit.2.jsonl, ...) stands for all of them, in order.
The key comes from --audit-key-file (or --key-file), TOOLWARDEN_AUDIT_KEY or TOOLWARDEN_AUDIT_KEY_FILE.`;

/** Where the command writes; tests pass their own, and a signal to stop `tail --follow`. */
export interface AuditIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  signal?: AbortSignal;
  env?: Record<string, string | undefined>;
}

class UsageError extends Error {}
class Failure extends Error {}

/**
 * `toolwarden audit verify|tail|query|receipt`. Exit codes: 0 ok, 1 verification failed (or a log
 * could not be read), 2 usage. Errors are one line on stderr, never a stack trace.
 */
export async function run(argv: string[], io: AuditIo = process): Promise<number> {
  const [verb, ...rest] = argv;
  try {
    switch (verb) {
      case "verify":
        return await verify(rest, io);
      case "tail":
        return await tail(rest, io);
      case "query":
        return await query(rest, io);
      case "receipt":
        return await receipt(rest, io);
      case "stats":
        return await stats(rest, io);
      case undefined:
      case "help":
      case "--help":
      case "-h":
        io.stdout.write(`${USAGE}\n`);
        return verb === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown audit command \`${verb}\``);
    }
  } catch (error) {
    const message = oneLine((error as Error)?.message ?? String(error));
    if (error instanceof UsageError || isParseArgsError(error)) {
      io.stderr.write(`toolwarden audit: ${message} (see \`toolwarden audit --help\`)\n`);
      return 2;
    }
    if (error instanceof AuditKeyError) {
      io.stderr.write(`toolwarden audit: ${message}\n`);
      return 2;
    }
    io.stderr.write(`toolwarden audit: ${message}\n`);
    return 1;
  }
}

async function verify(argv: string[], io: AuditIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      "key-file": { type: "string" },
      "audit-key-file": { type: "string" },
      unsigned: { type: "boolean" },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length === 0) throw new UsageError("no LOG given");
  const keyFile = values["audit-key-file"] ?? values["key-file"];
  const keyOptions = keyFile === undefined ? { env: io.env } : { keyFile, env: io.env };
  const key = resolveAuditKey(keyOptions);
  if (!key && !values.unsigned) {
    throw new UsageError(
      "no audit key: pass --audit-key-file FILE (or --key-file), or set TOOLWARDEN_AUDIT_KEY / TOOLWARDEN_AUDIT_KEY_FILE (or --unsigned to check the hash chain only)",
    );
  }
  const files = await expand(positionals);
  const result = await verifyAuditLog(files, key);
  if (result.firstError) {
    const e = result.firstError;
    const seq = e.seq === undefined ? "" : ` record ${e.seq}:`;
    io.stderr.write(
      `${e.file}:${e.line}:${seq} ${e.problem}: ${oneLine(e.message)} (${plural(result.records, "record")} verified before it)\n`,
    );
    return 1;
  }
  // With a key every record is signed by a checkpoint (else verification failed); without one, say how many records follow the last signature.
  const tail =
    result.uncovered > 0 ? `; the last ${plural(result.uncovered, "record")} follow no checkpoint` : "";
  const signed = result.hmacChecked
    ? `hash chain and hmac, ${plural(result.checkpoints, "checkpoint")}`
    : `hash chain only, hmac not checked${tail}`;
  io.stdout.write(
    `ok: ${plural(result.records, "record")} in ${plural(files.length, "file")} (${signed}); last seq ${result.last.seq}, hash ${result.last.hash}\n`,
  );
  return 0;
}

async function tail(argv: string[], io: AuditIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      lines: { type: "string", short: "n", default: "10" },
      follow: { type: "boolean", short: "f" },
      json: { type: "boolean" },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length !== 1) throw new UsageError("tail takes exactly one LOG");
  const log = positionals[0]!;
  const n = count(values.lines, "-n");
  const print = printer(io, values.json);
  const last = await tailAudit(log, Math.max(n, 1));
  for (const record of last.slice(Math.max(0, last.length - n))) print(record);
  if (values.follow) {
    // Read the active file from its start and skip what was printed: nothing appended meanwhile is missed.
    let after = last.at(-1)?.seq ?? 0;
    for await (const record of followAudit(log, { signal: io.signal ?? interrupted(), fromStart: true })) {
      if (record.seq <= after) continue;
      after = record.seq;
      print(record);
    }
  }
  return 0;
}

async function query(argv: string[], io: AuditIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      agent: { type: "string" },
      tool: { type: "string" },
      verdict: { type: "string", multiple: true },
      since: { type: "string" },
      until: { type: "string" },
      session: { type: "string" },
      kind: { type: "string" },
      observed: { type: "boolean" },
      json: { type: "boolean" },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length === 0) throw new UsageError("no LOG given");
  const filter: AuditFilter = {};
  if (values.agent !== undefined) filter.agent = values.agent;
  if (values.tool !== undefined) filter.tool = values.tool;
  if (values.session !== undefined) filter.session = values.session;
  if (values.kind !== undefined) filter.kind = values.kind as AuditFilter["kind"];
  if (values.verdict) {
    const verdicts = values.verdict.flatMap((v) => v.split(","));
    const bad = verdicts.find((v) => !isVerdict(v));
    if (bad !== undefined) throw new UsageError(`\`${bad}\` is not a verdict (allow, flag, ask, deny)`);
    filter.verdict = verdicts as Verdict[];
  }
  for (const name of ["since", "until"] as const) {
    const value = values[name];
    if (value === undefined) continue;
    if (Number.isNaN(Date.parse(value))) throw new UsageError(`--${name} \`${value}\` is not an ISO time`);
    filter[name] = value;
  }
  const print = printer(io, values.json);
  for await (const record of queryAudit(await expand(positionals), filter)) {
    // --observed: only the verdicts that were observed, not enforced (the would-be denials and asks).
    if (values.observed && record.enforced !== false) continue;
    print(record);
  }
  return 0;
}

/**
 * `audit stats`: decisions by verdict over a period, observed (unenforced) ones apart; with
 * `--rules`, how often each rule decided and contributed, and with `-p POLICY`, the policy's rules,
 * shorthand entries and limits that never fired.
 */
async function stats(argv: string[], io: AuditIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      rules: { type: "boolean" },
      policy: { type: "string", short: "p" },
      since: { type: "string" },
      until: { type: "string" },
      json: { type: "boolean" },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length === 0) throw new UsageError("no LOG given");
  const filter: AuditFilter = { kind: "decision" };
  for (const name of ["since", "until"] as const) {
    const value = values[name];
    if (value === undefined) continue;
    if (Number.isNaN(Date.parse(value))) throw new UsageError(`--${name} \`${value}\` is not an ISO time`);
    filter[name] = value;
  }
  let names: string[] = [];
  if (values.policy) {
    const { compilePolicyFile } = await import("../policy/index.js");
    const raw = compilePolicyFile(values.policy).loaded.policy;
    names = [
      ...(["allow", "flag", "ask", "deny"] as const).flatMap((v) =>
        (raw[v] ?? []).map((glob) => `${v}:${glob}`),
      ),
      ...(raw.rules ?? []).map((rule) => rule.name),
      ...(raw.limits ?? []).map((limit) => limit.name),
    ];
  }
  const verdicts: Record<string, { enforced: number; observed: number }> = {};
  const records: AuditRecord[] = [];
  const databases = positionals.filter((p) => /^postgres(ql)?:\/\//.test(p) || /\.(db|sqlite3?)$/.test(p));
  const logs = positionals.filter((p) => !databases.includes(p));
  const all: AuditRecord[] = [];
  for (const db of databases)
    all.push(...(await readDatabase(db, { since: values.since, until: values.until })));
  if (logs.length) for await (const record of queryAudit(await expand(logs), filter)) all.push(record);
  for (const record of all) {
    records.push(record);
    const v = (verdicts[String(record.verdict)] ??= { enforced: 0, observed: 0 });
    if (record.enforced === false) v.observed++;
    else v.enforced++;
  }
  const { ruleStats } = await import("../audit/rule-stats.js");
  const result = await ruleStats(records, names);
  if (values.json) {
    io.stdout.write(
      `${JSON.stringify({ verdicts, ...(values.rules || values.policy ? result : { decisions: result.decisions }) }, null, 2)}\n`,
    );
    return 0;
  }
  const out: string[] = [`${result.decisions} decisions`];
  for (const verdict of ["allow", "flag", "ask", "deny"]) {
    const v = verdicts[verdict];
    if (!v) continue;
    out.push(
      `  ${verdict.padEnd(5)} ${v.enforced}${v.observed ? ` (+${v.observed} observed, not enforced)` : ""}`,
    );
  }
  if (values.rules || values.policy) {
    out.push(
      "",
      "rule                                      decided  observed  matched  allow  flag  ask  deny",
    );
    for (const r of result.rules) {
      const b = r.byVerdict;
      out.push(
        `${clean(r.rule).padEnd(40).slice(0, 40)}  ${String(r.decided).padStart(7)}  ${String(r.observed).padStart(8)}  ${String(r.matched).padStart(7)}  ${String(b.allow).padStart(5)}  ${String(b.flag).padStart(4)}  ${String(b.ask).padStart(3)}  ${String(b.deny).padStart(4)}`,
      );
    }
    if (result.byDefault) out.push(`(default)${" ".repeat(33)}${String(result.byDefault).padStart(7)}`);
    if (values.policy) {
      out.push(
        "",
        result.never.length
          ? `never fired (${result.never.length}):`
          : "every rule of the policy fired at least once",
      );
      for (const name of result.never) out.push(`  ${name}`);
    }
  }
  io.stdout.write(`${out.join("\n")}\n`);
  return 0;
}

async function receipt(argv: string[], io: AuditIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { seq: { type: "string" } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length !== 1) throw new UsageError("receipt takes exactly one LOG");
  if (values.seq === undefined) throw new UsageError("--seq is required");
  const seq = count(values.seq, "--seq");
  // A record inside a batch is signed by the batch's checkpoint: read on to it, so the receipt names it.
  let found: AuditRecord | undefined;
  let by: number | undefined;
  for await (const record of queryAudit(await expand(positionals))) {
    if (!found) {
      if (record.seq !== seq) continue;
      found = record;
      const role = hmacRole(String(record.hmac ?? ""));
      if (role.role !== "covered") break;
      by = role.by;
    } else if (record.seq === by) {
      io.stdout.write(shareReceipt(found, { checkpoint: { seq: record.seq, hash: record.hash } }));
      return 0;
    }
  }
  if (!found) throw new Failure(`no record with seq ${seq} in \`${positionals[0]}\``);
  if (by !== undefined) {
    throw new Failure(
      `record ${seq} is not signed yet: its checkpoint, record ${by}, is not in \`${positionals[0]}\``,
    );
  }
  io.stdout.write(shareReceipt(found));
  return 0;
}

/** The decision records of a SQLite file or PostgreSQL URL a database sink wrote (the `serve` audit). */
async function readDatabase(
  input: string,
  range: { since?: string; until?: string },
): Promise<AuditRecord[]> {
  const { PostgresAuditReader, SqliteAuditReader } = await import("../server/audit-reader.js");
  const { readAll } = await import("./suggest.js");
  const reader = /^postgres/.test(input)
    ? await PostgresAuditReader.open(input)
    : await SqliteAuditReader.open(input);
  try {
    return await readAll(reader, range);
  } finally {
    await reader.close();
  }
}

/** Each LOG with its rotated siblings before it, in chain order, each file once. */
async function expand(logs: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const log of logs) {
    for (const file of await auditFiles(log)) if (!out.includes(file)) out.push(file);
  }
  return out;
}

function count(text: string, flag: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${flag} needs a whole number, not \`${text}\``);
  return Number(text);
}

function printer(io: AuditIo, json: boolean | undefined): (record: AuditRecord) => void {
  // canonicalJson, not JSON.stringify: iterative, so a record nested thousands deep still prints.
  if (json) return (record) => io.stdout.write(`${canonicalJson(record)}\n`);
  return (record) => io.stdout.write(`${summary(record)}\n`);
}

/** One line per record; values come from the log, so control characters (terminal escapes) are removed. */
function summary(record: AuditRecord): string {
  // A decision shows its verdict; any other record (pin, approval, output, policy) shows its kind,
  // so a pin's `allow` (the tool is listed) never reads as an allowed call.
  const decision = record.kind === undefined || record.kind === "decision";
  const head = decision ? (record.verdict ?? "decision") : record.kind;
  const parts = [`#${record.seq}`, clean(record.time), clean(head).padEnd(5)];
  // A verdict the policy only observed (the call ran) reads apart from one it enforced.
  if (decision && record.enforced === false) parts.push("(observed)");
  if (record.tool !== undefined) parts.push(clean(record.tool));
  if (!decision && record.server !== undefined) parts.push(`server=${clean(record.server)}`);
  if (record.agent !== undefined) parts.push(`agent=${clean(record.agent)}`);
  if (record.session !== undefined) parts.push(`session=${clean(record.session)}`);
  if (record.rule) parts.push(`rule=${clean(record.rule)}`);
  if (!decision && record.verdict !== undefined)
    parts.push(`${clean(record.kind)}-verdict=${clean(record.verdict)}`);
  if (record.findings?.length) parts.push(`findings=${record.findings.map((f) => clean(f.code)).join(",")}`);
  if (record.approval) {
    parts.push(`approval=${clean(record.approval.id)}:${clean(record.approval.status)}`);
    if (record.approval.by !== undefined) parts.push(`by=${clean(record.approval.by)}`);
    if (record.approval.reason !== undefined)
      parts.push(`reason=${JSON.stringify(clean(record.approval.reason))}`);
  }
  return parts.join(" ");
}

function clean(value: unknown): string {
  return String(value ?? "").replace(
    /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    "?",
  );
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ");
}

function isParseArgsError(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "string" && code.startsWith("ERR_PARSE_ARGS");
}

/** Aborts on Ctrl-C so `tail --follow` ends cleanly. */
function interrupted(): AbortSignal {
  const controller = new AbortController();
  process.once("SIGINT", () => controller.abort());
  return controller.signal;
}
