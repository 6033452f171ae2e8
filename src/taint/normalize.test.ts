import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  CharBuffer,
  isIgnorableAstral,
  normalizeFlowText,
  normalizeFullInto,
  normalizeInto,
  PART_SEPARATOR,
} from "./normalize.js";

describe("normalizeFlowText", () => {
  it.each([
    ["re-spaced and re-wrapped", "Send  the\n\tfile\r\n to me", "sendthefiletome"],
    ["re-cased", "SeNd ThE FiLe", "sendthefile"],
    ["fullwidth", "ＳＥＮＤ　ｔｈｅ　ｆｉｌｅ", "sendthefile"],
    ["ligatures and mathematical letters", "ﬁle 𝐛𝐨𝐥𝐝", "filebold"],
    ["zero-width and bidi controls", "se\u200bnd\u200d t\u202eh\u2066e\u00ad f\ufeffile", "sendthefile"],
    ["variation selectors and tag characters", "fi\ufe0fle\u{e0041}\u{e0100}", "file"],
    ["no-break and ideographic spaces", "a\u00a0b\u3000c\u2009d", "abcd"],
    ["markdown emphasis, code, quote, heading", "> **Send** _the_ `file` ~~now~~ # ok", "sendthefilenowok"],
    ["backslash escapes", 'say \\"hi\\"', 'say"hi"'],
    ["sharp s folds to ss", "Straße STRASSE ẞ", "strassestrassess"],
    ["final sigma", "ΟΔΟΣ οδος", "οδοσοδοσ"],
    ["typographic quotes and dashes", "‘a’ “b” «c» x–y—z − 1", '\'a\'"b""c"x-y-z-1'],
    ["other punctuation kept", "a.b,c;d:e!f?g(h)[i]{j}<k>", "a.b,c;d:e!f?g(h)[i]{j}<k"],
    ["astral letters kept", "emoji 😀 ok 𝄞", "emoji😀ok𝄞"],
    ["noncharacters and NUL dropped", "a\u0000b\uffffc\ufffed", "abcd"],
    ["empty", "", ""],
  ])("%s", (_name, input, expected) => {
    expect(normalizeFlowText(input)).toBe(expected);
  });

  it("never outputs the part separator", () => {
    const buf = new CharBuffer(4);
    normalizeInto("x\u0000y\u0000", buf);
    expect(Array.from(buf.data.subarray(0, buf.length))).not.toContain(PART_SEPARATOR);
  });

  it("tracks whether the result fits one byte a character", () => {
    const latin = new CharBuffer();
    normalizeInto("Café au lait", latin);
    expect(latin.max).toBeLessThan(256);
    const cyrillic = new CharBuffer();
    normalizeInto("Привет", cyrillic);
    expect(cyrillic.max).toBeGreaterThan(255);
  });

  it("grows the buffer when sharp s expands past the input length", () => {
    const buf = new CharBuffer(1);
    normalizeInto("ß".repeat(1000), buf);
    expect(buf.length).toBe(2000);
  });

  it("keeps a lone surrogate instead of throwing", () => {
    expect(normalizeFlowText("a\ud800b")).toBe("a\ud800b");
  });

  it("drops exactly the astral format and default-ignorable code points", () => {
    const ignorable = /[\p{Cf}\p{Default_Ignorable_Code_Point}]/u;
    const wrong: number[] = [];
    for (let cp = 0x10000; cp <= 0x10ffff; cp++) {
      if (isIgnorableAstral(cp) !== ignorable.test(String.fromCodePoint(cp))) wrong.push(cp);
    }
    expect(wrong).toEqual([]);
  });
});

describe("the ASCII fast path", () => {
  const RUNS = Number(process.env.TW_PROPERTY_RUNS ?? 2000);
  /** Every ASCII code unit, plus characters NFKC, case folding or the table change, and surrogates. */
  const unit = fc.oneof(
    { weight: 8, arbitrary: fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        ..."ßẞςΣÉéＡａﬁ𝐛\u00a0\u3000\u200b\u00ad\ufe0f\u{e0041}‘’“”«»–—−İıǅ½²Å\u0301\ud800\udc00\uffff😀",
      ),
    },
    { weight: 1, arbitrary: fc.integer({ min: 0x80, max: 0xffff }).map((c) => String.fromCharCode(c)) },
  );
  const text = fc.string({ unit, maxLength: 80 });

  function through(fill: (text: string, out: CharBuffer) => void, before: string, value: string) {
    const out = new CharBuffer(1);
    fill(before, out);
    fill(value, out);
    return { units: Array.from(out.data.subarray(0, out.length)), max: out.max };
  }

  it("gives exactly the full path's result on every input, appended after earlier content too", () => {
    let ascii = 0;
    fc.assert(
      fc.property(text, text, (before, value) => {
        if (!/[^\0-\x7f]/.test(value)) ascii++;
        expect(through(normalizeInto, before, value)).toEqual(through(normalizeFullInto, before, value));
      }),
      { numRuns: RUNS },
    );
    // Both paths were exercised: texts that stay ASCII and texts that leave it.
    expect(ascii).toBeGreaterThan(RUNS / 50);
    expect(ascii).toBeLessThan(RUNS);
  });

  it("every ASCII code unit alone, and all 128 in a row", () => {
    for (let c = 0; c < 0x80; c++) {
      const one = String.fromCharCode(c);
      expect(through(normalizeInto, "", one)).toEqual(through(normalizeFullInto, "", one));
    }
    const all = Array.from({ length: 0x80 }, (_, c) => String.fromCharCode(c)).join("");
    expect(through(normalizeInto, "x", all)).toEqual(through(normalizeFullInto, "x", all));
  });
});
