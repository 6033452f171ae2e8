import { createRequire } from "node:module";
import type { Finding } from "../../core/index.js";
import { preview } from "../kind.js";

/**
 * Invisible and direction-changing characters: controls, format characters (zero-width
 * space/joiners, bidi embeddings, overrides and isolates, BOM, soft hyphen, tag characters),
 * line/paragraph separators, variation selectors, the combining grapheme joiner and the Hangul
 * and Mongolian fillers that render as nothing.
 */
const HIDDEN =
  // biome-ignore lint/suspicious/noMisleadingCharacterClass: a set of single invisible code points, never sequences
  /[\u034f\p{Cc}\p{Cf}\p{Zl}\p{Zp}\u115f\u1160\u17b4\u17b5\u180b-\u180f\u3164\ufe00-\ufe0f\uffa0\u{e0100}-\u{e01ef}]/u;
const HIDDEN_ALL = new RegExp(HIDDEN.source, "gu");
/** Combining marks: `read_fíle` is read as `read_file`. */
const MARKS = /\p{Mn}/gu;
/** Separators an eye skips over or swaps: `send-email`, `send.email`, `send email`, `sendemail`. */
const SEPARATORS = /[\p{Pd}\p{Pc}\p{Z}.]/gu;
const SEEN_LIMIT = 1024;

let prototypes: ReadonlyMap<string, string> | undefined;

/**
 * UTS #39 `confusables.txt` (character -> prototype), as shipped by the `unhomoglyph` package
 * (Unicode 13 data). We use the data, not its `replace` function: the skeleton algorithm
 * needs NFD around the mapping, and a Map lookup per code point beats its large alternation.
 */
function confusablePrototypes(): ReadonlyMap<string, string> {
  if (prototypes === undefined) {
    const require = createRequire(import.meta.url);
    prototypes = new Map(Object.entries(require("unhomoglyph/data.json") as Record<string, string>));
  }
  return prototypes;
}

/** UTS #39 skeleton: NFD, each code point replaced by its prototype, NFD again. */
function skeleton(text: string, table: ReadonlyMap<string, string>): string {
  const decomposed = text.normalize("NFD");
  let out = "";
  let changed = false;
  for (const ch of decomposed) {
    const prototype = table.get(ch);
    if (prototype === undefined) out += ch;
    else {
      out += prototype;
      changed = true;
    }
  }
  return changed ? out.normalize("NFD") : decomposed;
}

/**
 * The comparison keys of a tool name: NFKC, hidden characters removed, case folded, confusable
 * skeleton (`0`->`o`, `1`->`l`, Cyrillic `а`->`a`, `m`->`rn`), combining marks and separators
 * removed. Two names with a key in common look alike to a person. There are two readings:
 * folded before the skeleton (`SEND_EMAIL` meets `send_email`) and after it (capital `I`
 * posing as `l` in `send_emaiI`, then folded so `M` meets `m`).
 */
function identityKeys(name: string, table: ReadonlyMap<string, string>): [string, string] {
  const plain = name.normalize("NFKC").replace(HIDDEN_ALL, "");
  const folded = strip(skeleton(plain.toLowerCase(), table));
  const shapes = strip(skeleton(skeleton(plain, table).toLowerCase(), table));
  return [folded, shapes];
}

function strip(key: string): string {
  return key.replace(MARKS, "").replace(SEPARATORS, "");
}

/** True when the name contains invisible or bidi control characters. */
export function hasHiddenCharacters(name: string): boolean {
  return HIDDEN.test(name);
}

/**
 * Compiles the look-alike check for the declared tool names (exact names; glob patterns are
 * skipped). The returned function gives:
 * - null for an exact declared name (one Set lookup) or a name unlike every declared one;
 * - `tool.hidden_characters` for any name with invisible or bidi control characters, declared
 *   or not (the message names the declared tool it imitates, if any);
 * - `tool.shadowing` for a name that is not declared but shares an identity key (above) with
 *   a declared name.
 */
export function compileShadowCheck(declared: readonly string[]): (tool: string) => Finding | null {
  const table = confusablePrototypes();
  const exact = new Set<string>();
  const byKey = new Map<string, string>();
  let longest = 0;
  for (const name of declared) {
    if (/[*?[\]{}]/.test(name)) continue;
    longest = Math.max(longest, name.length);
    if (!HIDDEN.test(name)) exact.add(name);
    for (const key of identityKeys(name, table)) if (key !== "" && !byKey.has(key)) byKey.set(key, name);
  }
  // What recently seen undeclared names imitate (or ""): agents repeat the same few names.
  const seen = new Map<string, string>();
  // A name many times longer than every declared one is no look-alike, and folding it costs time.
  const maxLength = longest * 18 + 64;
  const imitated = (tool: string): string | undefined => {
    if (tool.length > maxLength) return undefined;
    let target = seen.get(tool);
    if (target === undefined) {
      const [folded, shapes] = identityKeys(tool, table);
      target = byKey.get(folded) ?? byKey.get(shapes) ?? "";
      if (seen.size >= SEEN_LIMIT) seen.clear();
      seen.set(tool, target);
    }
    return target === "" ? undefined : target;
  };

  return (tool) => {
    if (exact.has(tool)) return null;
    if (typeof tool !== "string") {
      return { code: "tool.shadowing", message: `tool name \`${preview(tool)}\` is not a string` };
    }
    const target = imitated(tool);
    if (HIDDEN.test(tool)) {
      const imitates = target === undefined ? "" : ` and imitates \`${target}\``;
      return {
        code: "tool.hidden_characters",
        message: `tool name \`${escapeHidden(tool)}\` contains invisible or bidi control characters${imitates}`,
      };
    }
    if (target !== undefined && target !== tool) {
      return {
        code: "tool.shadowing",
        message: `tool \`${escapeHidden(tool)}\` is confusable with declared tool \`${target}\``,
      };
    }
    return null;
  };
}

/** Shows hidden characters as `\u{...}` so a message cannot itself hide or reorder text. */
function escapeHidden(name: string): string {
  const shown = preview(name, 80);
  return shown.replace(HIDDEN_ALL, (ch) => `\\u{${ch.codePointAt(0)!.toString(16)}}`);
}
