import { describe, expect, it } from "vitest";
import {
  CharBuffer,
  isIgnorableAstral,
  normalizeFlowText,
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
