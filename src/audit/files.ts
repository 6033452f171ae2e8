import { createReadStream } from "node:fs";
import { open, readdir } from "node:fs/promises";
import { basename, dirname, extname, join } from "node:path";

/**
 * Name of the `n`th rotated file of an active log: `audit.jsonl` -> `audit.1.jsonl`. Rotated files
 * are numbered upwards (1 is the oldest), so a rotation is one atomic rename and never renumbers.
 */
export function rotatedPath(active: string, n: number): string {
  const ext = extname(active);
  return join(dirname(active), `${basename(active, ext)}.${n}${ext}`);
}

/** Numbers of the rotated siblings of an active log that exist, ascending. */
export async function rotatedNumbers(active: string): Promise<number[]> {
  const ext = extname(active);
  const stem = basename(active, ext);
  let names: string[];
  try {
    names = await readdir(dirname(active));
  } catch {
    return [];
  }
  const numbers: number[] = [];
  for (const name of names) {
    if (!name.startsWith(`${stem}.`) || !name.endsWith(ext)) continue;
    const middle = name.slice(stem.length + 1, name.length - ext.length);
    if (/^[1-9][0-9]*$/.test(middle)) numbers.push(Number(middle));
  }
  return numbers.sort((a, b) => a - b);
}

/** The files of a rotated log in chain order: `audit.1.jsonl`, `audit.2.jsonl`, ..., `audit.jsonl`. */
export async function auditFiles(active: string): Promise<string[]> {
  const numbers = await rotatedNumbers(active);
  return [...numbers.map((n) => rotatedPath(active, n)), active];
}

/**
 * Lines of a text file with 1-based numbers, streamed. A final line without a newline is yielded too.
 * Lines end at "\n" only (a "\r" before it is dropped): `node:readline` on Node 24 also ends lines at
 * U+2028/U+2029, which JSON leaves unescaped inside strings, so it would tear genuine JSONL records.
 */
export async function* readLines(file: string): AsyncGenerator<{ text: string; line: number }> {
  const input = createReadStream(file, { encoding: "utf8" });
  let line = 0;
  let rest = "";
  try {
    for await (const chunk of input as AsyncIterable<string>) {
      let start = 0;
      let end = chunk.indexOf("\n");
      while (end !== -1) {
        const text = rest + chunk.slice(start, end);
        rest = "";
        yield { text: text.endsWith("\r") ? text.slice(0, -1) : text, line: ++line };
        start = end + 1;
        end = chunk.indexOf("\n", start);
      }
      rest += chunk.slice(start);
    }
    if (rest !== "") yield { text: rest.endsWith("\r") ? rest.slice(0, -1) : rest, line: ++line };
  } finally {
    input.destroy();
  }
}

/**
 * The last `n` complete lines of a file (those ending in a newline), oldest first, read backwards
 * in chunks so a large log costs only its tail. `partial` is an unterminated final fragment, if any.
 */
export async function readTailLines(
  file: string,
  n: number,
): Promise<{ lines: string[]; partial: string; size: number }> {
  const handle = await open(file, "r");
  try {
    const { size } = await handle.stat();
    const chunk = 64 * 1024;
    let pos = size;
    let tail = Buffer.alloc(0);
    // Stop once the buffer holds n+1 newlines (n full lines plus the one before them) or the file start.
    while (pos > 0 && countNewlines(tail) <= n) {
      const length = Math.min(chunk, pos);
      pos -= length;
      const buf = Buffer.alloc(length);
      await handle.read(buf, 0, length, pos);
      tail = Buffer.concat([buf, tail]);
    }
    const text = tail.toString("utf8");
    const end = text.lastIndexOf("\n");
    const partial = text.slice(end + 1);
    if (end < 0) return { lines: [], partial, size };
    const parts = text.slice(0, end).split("\n");
    // Without the file start in the buffer, the first part may be cut: drop it.
    if (pos > 0) parts.shift();
    return { lines: parts.slice(Math.max(0, parts.length - n)), partial, size };
  } finally {
    await handle.close();
  }
}

function countNewlines(buf: Buffer): number {
  let count = 0;
  let i = buf.indexOf(10);
  while (i !== -1) {
    count++;
    i = buf.indexOf(10, i + 1);
  }
  return count;
}
