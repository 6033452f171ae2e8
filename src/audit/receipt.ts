import { type ChainHead, hmacRole } from "./chain.js";
import type { AuditRecord } from "./types.js";

export interface ReceiptOptions {
  /** Masks credentials in free text (the reason), e.g. the secrets detector's masking function. */
  redactSecrets?: (text: string) => string;
  /** The checkpoint that signs the record, when it is not signed itself (`hmac: "@M"`): its seq and hash. */
  checkpoint?: ChainHead;
}

const TITLES: Record<string, string> = {
  deny: "call denied",
  ask: "call held for approval",
  flag: "call flagged",
  allow: "call allowed",
};

/**
 * A Markdown summary of one decision, safe to paste into an issue or a chat: verdict, tool,
 * policy, rule, reason, findings (codes and argument paths only), ids, time, the argument hash and
 * the record's place in the chain. It never contains the arguments, nor finding messages (which
 * may quote them). Every value from the record is put in a code span with control characters
 * removed and length capped, so a hostile tool name or reason cannot inject links, images, HTML
 * or table breaks.
 */
export function shareReceipt(record: AuditRecord, options: ReceiptOptions = {}): string {
  const mask = options.redactSecrets ?? ((text: string) => text);
  const verdict = record.verdict ?? record.kind;
  const rows: Array<[string, string]> = [["Verdict", `**${code(verdict)}**`]];
  if (record.tool !== undefined) {
    rows.push([
      "Tool",
      record.server ? `${code(record.tool)} on server ${code(record.server)}` : code(record.tool),
    ]);
  }
  if (record.policy !== undefined) rows.push(["Policy", code(record.policy)]);
  if (record.rule !== undefined) rows.push(["Rule", record.rule === null ? "default" : code(record.rule)]);
  if (record.reason) rows.push(["Reason", code(mask(record.reason), 500)]);
  if (record.findings?.length) {
    rows.push([
      "Findings",
      record.findings
        .slice(0, 20)
        .map((f) => (f.arg ? `${code(f.code)} in ${code(f.arg)}` : code(f.code)))
        .join(", "),
    ]);
  }
  if (record.labels?.length)
    rows.push([
      "Labels",
      record.labels
        .slice(0, 20)
        .map((l) => code(l))
        .join(", "),
    ]);
  if (record.agent !== undefined) rows.push(["Agent", code(record.agent)]);
  if (record.session !== undefined) rows.push(["Session", code(record.session)]);
  if (record.approval) {
    const by = record.approval.by ? ` by ${code(record.approval.by)}` : "";
    rows.push(["Approval", `${code(record.approval.id)}: ${code(record.approval.status)}${by}`]);
  }
  rows.push(["Time", code(record.time)]);
  if (record.argsHash) rows.push(["Arguments", `not shown; sha256 ${code(record.argsHash)}`]);
  const chain = record.chain ? ` in chain ${code(record.chain)}` : "";
  rows.push([
    "Audit record",
    `seq ${code(String(record.seq))}${chain}, hash ${code(record.hash)}${signedBy(record, options.checkpoint)}`,
  ]);

  const title = TITLES[String(record.verdict)] ?? "audit record";
  return [
    `### toolwarden: ${title}`,
    "",
    "| | |",
    "|---|---|",
    ...rows.map(([name, value]) => `| ${name} | ${value} |`),
    "",
    "_Check it against the signed log with `toolwarden audit verify`._",
    "",
  ].join("\n");
}

/**
 * Where the record's signature is, when it is not its own: the checkpoint that authenticates the
 * chain up to and including it. With its hash, the receipt pins that chain head too.
 */
function signedBy(record: AuditRecord, checkpoint: ChainHead | undefined): string {
  const role = hmacRole(String(record.hmac ?? ""));
  if (role.role !== "covered") return "";
  if (checkpoint?.seq === role.by) {
    return `; signed by the checkpoint at seq ${code(String(checkpoint.seq))}, hash ${code(checkpoint.hash)}`;
  }
  return `; signed by the checkpoint at seq ${code(String(role.by))}`;
}

/**
 * A value as an inline code span: no control characters or newlines, no backticks (they would end
 * the span), `|` escaped for the table, at most `max` characters.
 */
function code(value: unknown, max = 200): string {
  let text = String(value ?? "")
    .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069]+/g, " ")
    .replaceAll("`", "'")
    .trim();
  if (text.length > max) text = `${text.slice(0, max)}…`;
  if (text === "") return "—";
  return `\`${text.replaceAll("|", "\\|")}\``;
}
