/*
 * Encodings a credential is commonly wrapped in before it is pasted, committed or sent (as
 * gitleaks' decode layers): base64 and base64url (Kubernetes Secret `data:`, kubeconfig
 * `client-key-data`, Docker `auth`, `echo ... | base64 -d`), hex, percent-encoding, JSON `\u`
 * escapes written into text, and fullwidth / compatibility forms (NFKC). Each finder returns
 * decoded text worth scanning again, or nothing; a clean string is tested with one native pass
 * per encoding and allocates nothing.
 */

const HEX = /^(?:[0-9a-f]{2})+$|^(?:[0-9A-F]{2})+$/;
const PERCENT = /%[0-9A-Fa-f]{2}/;
const PERCENT_ALL = /%([0-9A-Fa-f]{2})/g;
const UNICODE_ESCAPE = /\\u([0-9A-Fa-f]{4})|\\x([0-9A-Fa-f]{2})/g;
const NON_ASCII = /[^\x00-\x7f]/;

/** At least 90 % printable ASCII (tabs and line breaks count), at least 12 characters. */
function printable(text: string): boolean {
  if (text.length < 12) return false;
  let bad = 0;
  const allowed = text.length / 10;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (!((c >= 32 && c < 127) || c === 9 || c === 10 || c === 13) && ++bad > allowed) return false;
  }
  return true;
}

/**
 * Calls `found` with each decoded view of `text`, most specific first; stops when `found`
 * returns false (the caller's budget is spent).
 */
export function forEachDecoded(
  text: string,
  found: (decoded: string, layer: string, from: number, to: number) => boolean,
  /** Characters the caller may still decode; a view longer than this is not built. */
  budget: () => number,
): void {
  // A whole-text transform is at most as long as the text: not started when over the budget.
  const whole = text.length <= budget();
  if (whole && text.indexOf("%") >= 0 && PERCENT.test(text)) {
    const decoded = text.replace(PERCENT_ALL, (_, hex: string) =>
      String.fromCharCode(Number.parseInt(hex, 16)),
    );
    if (!found(decoded, "URL-encoded", 0, text.length)) return;
  }
  if (whole && (text.indexOf("\\u") >= 0 || text.indexOf("\\x") >= 0)) {
    const decoded = text.replace(UNICODE_ESCAPE, (_match, u: string | undefined, x: string | undefined) =>
      String.fromCharCode(Number.parseInt(u ?? x ?? "", 16)),
    );
    if (decoded !== text && !found(decoded, "\\u-escaped", 0, text.length)) return;
  }
  // Buffer.byteLength is vectorised: far cheaper than a regular expression over ASCII text.
  if (whole && Buffer.byteLength(text) !== text.length && NON_ASCII.test(text)) {
    const decoded = text.normalize("NFKC");
    if (decoded !== text && !found(decoded, "in compatibility characters", 0, text.length)) return;
  }
  // Runs of 20+ base64 characters, found by probing every 20th character (any such run covers
  // one) and widening around it: about n/20 probes plus the words they land in, no regex.
  const n = text.length;
  for (let probe = 19; probe < n; ) {
    if (!isRunChar(text.charCodeAt(probe))) {
      probe += MIN_RUN;
      continue;
    }
    let start = probe;
    while (start > 0 && isRunChar(text.charCodeAt(start - 1))) start--;
    let end = probe + 1;
    while (end < n && isRunChar(text.charCodeAt(end))) end++;
    const runEnd = end;
    // base64 decodes to 3/4 of its length, hex to 1/2.
    if (end - start >= MIN_RUN && ((end - start) * 3) / 4 <= budget()) {
      while (end < n && end - runEnd < 2 && text.charCodeAt(end) === 61 /* = */) end++;
      const run = text.slice(start, end);
      const decoded = decodeRun(run);
      const how = HEX.test(run) ? "hex-encoded" : "base64-encoded";
      if (decoded !== undefined && !found(decoded, how, start, end)) return;
    }
    probe = runEnd + MIN_RUN;
  }
}

const MIN_RUN = 20;
const RUN_CHAR = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-")
  RUN_CHAR[c.charCodeAt(0)] = 1;

function isRunChar(c: number): boolean {
  return c < 128 && RUN_CHAR[c] === 1;
}

/** A run decoded as hex (when it is even-length hex) or base64(url), if the result is text. */
function decodeRun(run: string): string | undefined {
  if (run.length >= 32 && HEX.test(run)) {
    const decoded = Buffer.from(run, "hex").toString("latin1");
    return printable(decoded) ? decoded : undefined;
  }
  const url = run.indexOf("-") >= 0 || run.indexOf("_") >= 0;
  if (url && (run.indexOf("+") >= 0 || run.indexOf("/") >= 0)) return undefined;
  const decoded = Buffer.from(run, url ? "base64url" : "base64").toString("latin1");
  return printable(decoded) ? decoded : undefined;
}
