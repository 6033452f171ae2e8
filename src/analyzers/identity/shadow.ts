import { createRequire } from "node:module";
import type { Finding } from "../../core/index.js";
import { preview } from "../kind.js";

/**
 * Invisible and direction-changing characters: controls, format characters (zero-width
 * space/joiners, bidi embeddings, overrides and isolates, BOM, soft hyphen, tag characters),
 * line/paragraph separators, variation selectors, the combining grapheme joiner, the Hangul
 * and Mongolian fillers, every default-ignorable code point (unassigned ones included: a
 * renderer shows them as nothing) and the braille blank, which is a visible-width nothing.
 */
const HIDDEN =
  // biome-ignore lint/suspicious/noMisleadingCharacterClass: a set of single invisible code points, never sequences
  /[\u034f\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}\u115f\u1160\u17b4\u17b5\u180b-\u180f\u2800\u3164\ufe00-\ufe0f\uffa0\u{e0100}-\u{e01ef}]/u;
const HIDDEN_ALL = new RegExp(HIDDEN.source, "gu");
/** Combining marks: `read_fíle` is read as `read_file`. */
const MARKS = /\p{Mn}/gu;
/**
 * Separators an eye skips over or swaps: `send-email`, `send.email`, `send email`, `sendemail`,
 * and line-shaped symbols read as one (`ˍ`, `▁`, `⎽`, `⸏`, box-drawing lines, and `㇐`, the
 * confusables prototype of the em dash).
 */
const SEPARATORS = /[\p{Pd}\p{Pc}\p{Z}.\u02cd\u23af\u23bd\u2500\u2501\u2581\u2e0f\u31d0]/gu;
/** A letter of a script other than Latin (Cyrillic `є`, Greek, Armenian, ...). */
const FOREIGN_LETTER = /(?!\p{Script=Latin})\p{L}/u;
const LATIN_LETTER = /\p{Script=Latin}/u;
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
  // Separators go before the skeleton too: it maps some dashes to symbols that are no separators.
  const plain = name.normalize("NFKC").replace(HIDDEN_ALL, "").replace(SEPARATORS, "");
  const folded = strip(skeleton(plain.toLowerCase(), table));
  const shapes = strip(skeleton(skeleton(plain, table).toLowerCase(), table));
  return [folded, shapes];
}

/** A name as compared letter by letter: NFKC, hidden characters removed, lower case, stripped. */
function letters(name: string): string[] {
  return [...strip(name.normalize("NFKC").replace(HIDDEN_ALL, "").toLowerCase())];
}

/**
 * UTS #39 mixed-script check for letters the confusables data does not map (`http_gєt`,
 * `send_eмail`): inside a word that mixes Latin with another script, each foreign letter stands
 * for any one letter, and the name imitates a declared name it then matches letter for letter.
 * A whole foreign word (`read_файл`) is a bilingual name, not a disguise, so it never counts;
 * nor does a name that is more than half wildcards.
 */
function mixedScriptTarget(
  tool: string,
  declared: ReadonlyArray<readonly [string, string[]]>,
  table: ReadonlyMap<string, string>,
): string | undefined {
  const plain = tool.normalize("NFKC").replace(HIDDEN_ALL, "").toLowerCase().replace(MARKS, "");
  if (!FOREIGN_LETTER.test(plain) || !LATIN_LETTER.test(plain)) return undefined;
  const chars: Array<string | null> = [];
  let wildcards = 0;
  for (const word of plain.split(SEPARATORS)) {
    const mixed = FOREIGN_LETTER.test(word) && LATIN_LETTER.test(word);
    for (const ch of word) {
      if (mixed && FOREIGN_LETTER.test(ch)) {
        chars.push(null);
        wildcards++;
      } else chars.push(ch);
    }
  }
  if (wildcards === 0 || wildcards * 2 > chars.length) return undefined;
  for (const [name, want] of declared) {
    if (want.length !== chars.length) continue;
    if (
      want.every((letter, i) => chars[i] === null || chars[i] === letter || table.get(chars[i]!) === letter)
    )
      return name;
  }
  return undefined;
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
 *   a declared name, or mixes scripts inside a word to imitate one (`mixedScriptTarget`).
 */
export function compileShadowCheck(declared: readonly string[]): (tool: string) => Finding | null {
  const table = confusablePrototypes();
  const exact = new Set<string>();
  const byKey = new Map<string, string>();
  const byLetters: Array<readonly [string, string[]]> = [];
  let longest = 0;
  for (const name of declared) {
    if (/[*?[\]{}]/.test(name)) continue;
    longest = Math.max(longest, name.length);
    if (!HIDDEN.test(name)) exact.add(name);
    for (const key of identityKeys(name, table)) if (key !== "" && !byKey.has(key)) byKey.set(key, name);
    byLetters.push([name, letters(name)]);
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
      target = byKey.get(folded) ?? byKey.get(shapes) ?? mixedScriptTarget(tool, byLetters, table) ?? "";
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
