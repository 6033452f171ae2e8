/**
 * Normalisation for content fingerprints: copies of a tool output should still match after an
 * agent re-spaces, re-cases, re-wraps or re-formats it, so both the recorded content and every
 * scanned argument go through the same function:
 *
 * 1. NFKC (fullwidth, ligatures, mathematical letters, compatibility spaces fold to plain forms);
 * 2. lower case, plus full folding of `ß`/`ẞ` to `ss` and final `ς` to `σ`;
 * 3. drop all whitespace, control, format (`Cf`: zero-width, bidi controls, soft hyphen) and
 *    default-ignorable characters (variation selectors, tag characters, Hangul fillers);
 * 4. drop the markers formatting adds or removes without changing the words: markdown emphasis,
 *    code, quote and heading marks `* _ \` ~ > #` and backslash escapes `\`;
 * 5. fold typographic quotes to `'` / `"` and dashes (U+2010..U+2015, minus) to `-`.
 *
 * Other punctuation is kept: dropping it would make unrelated text match more often.
 * Lengths are counted in UTF-16 code units of the result. Not folded: confusables across scripts
 * (Cyrillic `а` vs Latin `a`), accents, encodings (base64) and paraphrase.
 */

const KEEP = 0;
const DROP = 1;
const EXPAND_SS = 2;

/** Code unit 0 never survives normalisation, so recorded content uses it to separate parts. */
export const PART_SEPARATOR = 0;

let foldTable: Uint16Array | undefined;

/** Per BMP code unit: KEEP, DROP, EXPAND_SS or the replacement code unit. Built once, on first use. */
function table(): Uint16Array {
  if (foldTable) return foldTable;
  const t = new Uint16Array(0x10000);
  const drop = /[\s\p{Cc}\p{Cf}\p{Default_Ignorable_Code_Point}]/u;
  for (let c = 0; c < 0x10000; c++) {
    if ((c < 0xd800 || c > 0xdfff) && drop.test(String.fromCharCode(c))) t[c] = DROP;
  }
  for (const ch of "*_`~>#\\\uFFFE\uFFFF") t[ch.charCodeAt(0)] = DROP;
  t[0xdf] = EXPAND_SS;
  t[0x3c2] = 0x3c3;
  for (const c of [0x2018, 0x2019, 0x201a, 0x201b, 0x2032, 0x2035]) t[c] = 0x27;
  for (const c of [0x201c, 0x201d, 0x201e, 0x201f, 0x2033, 0x2036, 0xab, 0xbb]) t[c] = 0x22;
  for (const c of [0x2010, 0x2011, 0x2012, 0x2013, 0x2014, 0x2015, 0x2212]) t[c] = 0x2d;
  foldTable = t;
  return t;
}

/** Astral code points that are format or default-ignorable (checked against `\p{}` in the tests). */
export function isIgnorableAstral(cp: number): boolean {
  return (
    (cp >= 0xe0000 && cp <= 0xe0fff) ||
    (cp >= 0x1d173 && cp <= 0x1d17a) ||
    (cp >= 0x1bca0 && cp <= 0x1bca3) ||
    (cp >= 0x13430 && cp <= 0x1343f) ||
    cp === 0x110bd ||
    cp === 0x110cd
  );
}

/** A growable buffer of normalised UTF-16 code units; reused so scans allocate little. */
export class CharBuffer {
  data: Uint16Array;
  length = 0;
  /** Largest code unit written since the last reset: below 256 the text fits in one byte a char. */
  max = 0;
  constructor(capacity = 256) {
    this.data = new Uint16Array(capacity);
  }
  reset(): void {
    this.length = 0;
    this.max = 0;
  }
  reserve(extra: number): void {
    const need = this.length + extra;
    if (need <= this.data.length) return;
    const next = new Uint16Array(Math.max(need, this.data.length * 2));
    next.set(this.data.subarray(0, this.length));
    this.data = next;
  }
  push(code: number): void {
    if (this.length === this.data.length) this.reserve(1);
    this.data[this.length++] = code;
    if (code > this.max) this.max = code;
  }
}

let asciiTable: Uint8Array | undefined;

/** Per ASCII code unit: what `normalizeFullInto` makes of it (lower-cased), or 0 when it drops it. */
function ascii(): Uint8Array {
  if (asciiTable) return asciiTable;
  const t = table();
  const a = new Uint8Array(0x80);
  for (let c = 1; c < 0x80; c++) {
    const lower = c >= 0x41 && c <= 0x5a ? c + 0x20 : c;
    const f = t[lower];
    a[c] = f === DROP ? 0 : f === KEEP ? lower : f;
  }
  asciiTable = a;
  return a;
}

const encoder = new TextEncoder();
/** UTF-8 of the text being normalised; texts longer than this get a buffer of their own. */
const utf8 = new Uint8Array(1 << 16);

/**
 * Appends the normalised form of `text` to `out`. ASCII text (most arguments) takes one pass over
 * its bytes and a 128-entry table: NFKC leaves ASCII unchanged and lower-casing it only maps
 * `A`-`Z`, so the result is the full path's (a property test holds the two equal). The native
 * UTF-8 encoder both copies the text out and tells whether it is ASCII (one byte a code unit);
 * reading bytes from a typed array is about three times faster than `charCodeAt`.
 */
export function normalizeInto(text: string, out: CharBuffer): void {
  const n = text.length;
  const bytes = n <= utf8.length ? utf8 : new Uint8Array(n);
  const { read, written } = encoder.encodeInto(text, bytes);
  if (read !== n || written !== n) {
    normalizeFullInto(text, out);
    return;
  }
  out.reserve(n);
  const data = out.data;
  const a = ascii();
  let o = out.length;
  let max = out.max;
  for (let i = 0; i < n; i++) {
    const f = a[bytes[i]];
    if (f === 0) continue;
    data[o++] = f;
    if (f > max) max = f;
  }
  out.length = o;
  out.max = max;
}

/**
 * `normalizeInto` for any text: NFKC, lower case, then a hand-written loop over a lookup table
 * (the equivalent `String.replace` with a Unicode regex is about four times slower on large texts).
 */
export function normalizeFullInto(text: string, out: CharBuffer): void {
  const t = table();
  const s = text.normalize("NFKC").toLowerCase();
  const n = s.length;
  out.reserve(n);
  let data = out.data;
  let o = out.length;
  let max = out.max;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    const f = t[c];
    if (f === DROP) continue;
    if (f === KEEP) {
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
        const lo = s.charCodeAt(i + 1);
        if (lo >= 0xdc00 && lo <= 0xdfff) {
          i++;
          if (isIgnorableAstral(((c - 0xd800) << 10) + (lo - 0xdc00) + 0x10000)) continue;
          data[o++] = c;
          data[o++] = lo;
          if (c > max) max = c;
          continue;
        }
      }
      data[o++] = c;
      if (c > max) max = c;
    } else if (f === EXPAND_SS) {
      // The only expansion after NFKC: make room for the extra unit.
      if (o + 2 + (n - i - 1) > data.length) {
        out.length = o;
        out.reserve(n - i + 1);
        data = out.data;
      }
      data[o++] = 0x73;
      data[o++] = 0x73;
      if (max < 0x73) max = 0x73;
    } else {
      data[o++] = f;
      if (f > max) max = f;
    }
  }
  out.length = o;
  out.max = max;
}

/** The normalised form of `text` as a string (for tests, `explain` and debugging). */
export function normalizeFlowText(text: string): string {
  const buf = new CharBuffer(text.length + 16);
  normalizeInto(text, buf);
  let result = "";
  for (let i = 0; i < buf.length; i += 8192) {
    result += String.fromCharCode(...buf.data.subarray(i, Math.min(buf.length, i + 8192)));
  }
  return result;
}
