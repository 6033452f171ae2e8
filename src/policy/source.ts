import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument } from "yaml";
import type { Document, Node } from "yaml";
import type { z } from "zod";
import type { PolicyIssue } from "../core/index.js";

export type PathSegment = string | number;

/** A parsed policy file that can still point at its own text. */
export interface PolicySource {
  file: string;
  text: string;
  doc: Document.Parsed;
  lines: LineCounter;
}

/** Parses YAML (JSON is YAML too); syntax errors become issues with positions. */
export function parseSource(file: string, text: string): { source: PolicySource; issues: PolicyIssue[] } {
  const lines = new LineCounter();
  // Bounded before parsing: the parser and everything after it recurse per level.
  const tooDeep = nestingPast(text, MAX_POLICY_DEPTH);
  if (tooDeep !== undefined) {
    const source = { file, text, doc: parseDocument(""), lines };
    for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) lines.addNewLine(i + 1);
    return {
      source,
      issues: [issueAt(source, tooDeep, `the policy is nested deeper than ${MAX_POLICY_DEPTH} levels`)],
    };
  }
  let doc: Document.Parsed;
  try {
    doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  } catch (error) {
    // The parser itself can overflow its stack (thousands of nested compact mappings).
    const empty = { file, text, doc: parseDocument(""), lines };
    return {
      source: empty,
      issues: [issueAt(empty, 0, `invalid YAML: ${firstLine((error as Error).message)}`)],
    };
  }
  const source: PolicySource = { file, text, doc, lines };
  const issues: PolicyIssue[] = [...doc.errors, ...doc.warnings].map((error) =>
    issueAt(source, error.pos[0], `invalid YAML: ${firstLine(error.message)}`),
  );
  return { source, issues };
}

/**
 * Deepest nesting a policy document may have (block indentation, `- ` entries and flow brackets
 * together). Twice a call's own bound (64), so a policy's `tests:` can hold a call one level past
 * that bound (which must be denied as malformed) inside the policy's own structure.
 */
export const MAX_POLICY_DEPTH = 128;

/**
 * The offset where `text` nests deeper than `max`, or undefined: one linear pass that counts
 * block levels by indentation, compact `- ` entries, and `[`/`{` outside quotes and comments. It
 * over-counts rather than under-counts (a bracket in a block scalar counts), never parses.
 */
export function nestingPast(text: string, max: number): number | undefined {
  const indents: number[] = [];
  let flow = 0;
  let quote: '"' | "'" | undefined;
  let i = 0;
  while (i < text.length) {
    let end = text.indexOf("\n", i);
    if (end < 0) end = text.length;
    let j = i;
    if (quote === undefined && flow === 0) {
      while (j < end && text.charCodeAt(j) === 32) j++;
      const first = text[j];
      if (j < end && first !== "#" && first !== "\r") {
        const indent = j - i;
        while (indents.length && indent <= indents[indents.length - 1]!) indents.pop();
        indents.push(indent);
        // `- - - x` nests a sequence per dash on one line.
        while ((text[j] === "-" || text[j] === "?") && (text[j + 1] === " " || text[j + 1] === "\t")) {
          indents.push(j - i + 1);
          j += 2;
          while (j < end && text.charCodeAt(j) === 32) j++;
        }
        if (indents.length > max) return j;
      }
    }
    for (; j < end; j++) {
      const c = text[j];
      if (quote === '"') {
        if (c === "\\") j++;
        else if (c === '"') quote = undefined;
      } else if (quote === "'") {
        if (c === "'") quote = undefined;
      } else if ((c === '"' || c === "'") && startsScalar(text, i, j)) {
        quote = c;
      } else if (c === "#" && (j === i || text[j - 1] === " " || text[j - 1] === "\t")) {
        break;
      } else if (c === "[" || c === "{") {
        if (++flow + indents.length > max) return j;
      } else if ((c === "]" || c === "}") && flow > 0) {
        flow--;
      }
    }
    i = end + 1;
  }
  return undefined;
}

/** Whether a quote at `j` opens a quoted scalar (after `: `, `- `, `[`, `{`, `,`, `? ` or at the line's start), not an apostrophe inside plain text. */
function startsScalar(text: string, lineStart: number, j: number): boolean {
  let k = j - 1;
  while (k >= lineStart && (text[k] === " " || text[k] === "\t")) k--;
  if (k < lineStart) return true;
  const before = text[k];
  return (
    before === ":" || before === "-" || before === "[" || before === "{" || before === "," || before === "?"
  );
}

function firstLine(message: string): string {
  return message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
}

/** An issue at a byte offset, with a one-line code frame. */
export function issueAt(
  source: PolicySource,
  offset: number,
  message: string,
  help?: string,
  code = "yaml",
): PolicyIssue {
  const { line, col } = source.lines.linePos(Math.max(0, Math.min(offset, source.text.length)));
  // The line from its start, not from splitting the whole text: 20,000 issues in a 50 KB file took seconds.
  const start = source.lines.lineStarts[line - 1] ?? 0;
  const end = source.text.indexOf("\n", start);
  const text = source.text.slice(start, end < 0 ? source.text.length : end);
  const frame = `${String(line).padStart(4)} | ${text}\n     | ${" ".repeat(Math.max(0, col - 1))}^`;
  return { file: source.file, line, col, message, frame, help, code };
}

/**
 * An issue at a path in the document. With `atKey`, points at the key of the last segment
 * (for unknown keys); a path that does not exist points at its deepest existing ancestor.
 */
export function issueAtPath(
  source: PolicySource,
  path: readonly PathSegment[],
  message: string,
  options: { atKey?: boolean; help?: string; code?: string } = {},
): PolicyIssue {
  const issue = issueAt(
    source,
    offsetOf(source, path, options.atKey ?? false),
    message,
    options.help,
    options.code ?? "invalid",
  );
  if (path.length) issue.path = path.join(".");
  return issue;
}

function offsetOf(source: PolicySource, path: readonly PathSegment[], atKey: boolean): number {
  let node: unknown = source.doc.contents;
  let offset = (node as Node | null)?.range?.[0] ?? 0;
  for (let i = 0; i < path.length; i++) {
    const segment = path[i];
    if (isMap(node)) {
      const pair = node.items.find(
        (item) => isPair(item) && isScalar(item.key) && String(item.key.value) === String(segment),
      );
      if (!pair) return offset;
      const keyNode = pair.key as Node;
      if (atKey && i === path.length - 1) return keyNode.range?.[0] ?? offset;
      node = pair.value;
      offset = (pair.value as Node | null)?.range?.[0] ?? keyNode.range?.[0] ?? offset;
    } else if (isSeq(node) && typeof segment === "number") {
      node = node.items[segment];
      if (!node) return offset;
      offset = (node as Node).range?.[0] ?? offset;
    } else {
      return offset;
    }
  }
  return offset;
}

/** The closest candidate by edit distance, for "did you mean". */
export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length];
}

/** Known keys per level of a document, as (path pattern, keys), for "did you mean". */
export type KnownKeys = ReadonlyArray<readonly [RegExp, readonly string[]]>;

/**
 * Schema (zod) issues as policy issues at their source positions: an unknown key points at the
 * key with the closest known one, a bad record key at the key, anything else at the value.
 */
/** The allowed words behind an enum or literal-union issue, or undefined. */
function choicesOf(issue: z.core.$ZodIssue): string[] | undefined {
  const words = (values: readonly unknown[]) =>
    values.length && values.every((v) => typeof v === "string") ? (values as string[]) : undefined;
  if (issue.code === "invalid_value") return words(issue.values);
  if (issue.code === "invalid_union") {
    const all: unknown[] = [];
    for (const branch of issue.errors) {
      if (branch.length !== 1 || branch[0].code !== "invalid_value") return undefined;
      all.push(...branch[0].values);
    }
    return words(all);
  }
  return undefined;
}

/** The value at a path of the document, for messages. */
function valueAt(source: PolicySource, path: readonly PathSegment[]): unknown {
  let node: unknown = source.doc.toJS({ maxAliasCount: 100 });
  for (const segment of path) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<string | number, unknown>)[segment];
  }
  return node;
}

export function schemaIssues(
  source: PolicySource,
  issues: readonly z.core.$ZodIssue[],
  known: KnownKeys,
): PolicyIssue[] {
  const out: PolicyIssue[] = [];
  for (const issue of issues) {
    const path = issue.path.filter((p): p is PathSegment => typeof p !== "symbol");
    if (issue.code === "unrecognized_keys") {
      const keys = known.find(([re]) => re.test(path.join("/")))?.[1] ?? [];
      for (const key of issue.keys) {
        const guess = didYouMean(key, keys);
        const help = guess
          ? `did you mean \`${guess}\`?`
          : keys.length
            ? `expected one of: ${keys.join(", ")}`
            : undefined;
        out.push(
          issueAtPath(source, [...path, key], `unknown key \`${key}\``, {
            atKey: true,
            help,
            code: "unknown_key",
          }),
        );
      }
      continue;
    }
    const atKey = issue.code === "invalid_key";
    const message =
      issue.code === "invalid_key" ? (issue.issues[0]?.message ?? issue.message) : issue.message;
    const where = path.length ? `\`${path.join(".")}\`: ` : "";
    // A value that must be one of a few words (a verdict): name them, and the closest one.
    const choices = choicesOf(issue);
    const given = valueAt(source, path);
    const guess = choices && typeof given === "string" ? didYouMean(given, choices) : undefined;
    out.push(
      issueAtPath(
        source,
        path,
        choices
          ? `${where}\`${String(given)}\` is not one of ${choices.map((c) => `\`${c}\``).join(", ")}`
          : `${where}${message.replace(/^Invalid input: /, "").replace(/^./, (c) => c.toLowerCase())}`,
        {
          atKey,
          help: guess ? `did you mean \`${guess}\`?` : undefined,
          code: choices ? "invalid_value" : issue.code,
        },
      ),
    );
  }
  return out;
}
