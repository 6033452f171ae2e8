import { describe, expect, it } from "vitest";
import { compileShadowCheck, hasHiddenCharacters } from "./index.js";

const declared = ["send_email", "read_file", "run_command", "list_files"];
const check = compileShadowCheck(declared);

describe("compileShadowCheck", () => {
  it.each(declared)("lets the declared name %s through", (name) => {
    expect(check(name)).toBeNull();
  });

  it.each([
    ["send-email", "separator swapped"],
    ["send.email", "separator swapped"],
    ["sendemail", "separator dropped"],
    ["SEND_EMAIL", "case folded"],
    ["send_ernail", "rn for m"],
    ["s\u0435nd_email", "Cyrillic ie"],
    ["send_emai1", "digit one for l"],
    ["send_emaiI", "capital I for l"],
    ["\uff53\uff45\uff4e\uff44\uff3f\uff45\uff4d\uff41\uff49\uff4c", "fullwidth"],
    ["read_f\u00edle", "accented i"],
    ["run_c0mmand", "digit zero for o"],
    ["run_c\u03bfmmand", "Greek omicron"],
    ["Iist_files", "capital I for l"],
  ])("flags %s as shadowing (%s)", (tool) => {
    const finding = check(tool);
    expect(finding?.code).toBe("tool.shadowing");
    expect(finding?.message).toContain("declared tool `");
  });

  it.each([
    ["send_email\u200b", "send_email"],
    ["\u202esend_email", "send_email"],
    ["send\u00ademail", "send_email"],
    ["run_command\u{e0041}", "run_command"],
    ["weather\u200d", undefined],
  ])("flags hidden characters in %j", (tool, imitated) => {
    const finding = check(tool);
    expect(finding?.code).toBe("tool.hidden_characters");
    // the message escapes the hidden characters instead of echoing them
    expect(hasHiddenCharacters(finding!.message)).toBe(false);
    if (imitated) expect(finding?.message).toContain(`imitates \`${imitated}\``);
    else expect(finding?.message).not.toContain("imitates");
  });

  it.each([
    ["send_email\u2800", "braille blank"],
    ["\u2800read_file", "leading braille blank"],
    ["read_file\u{e0002}", "unassigned tag code point"],
    ["run_command\u2065", "unassigned default-ignorable code point"],
    ["list_files\ufff0", "unassigned specials code point"],
  ])("flags %j as hidden characters (%s)", (tool) => {
    expect(check(tool)?.code).toBe("tool.hidden_characters");
  });

  it.each([
    ["read\u02cdfile", "modifier letter low macron for _"],
    ["list\u2581files", "lower one eighth block for _"],
    ["send\u23bdemail", "horizontal scan line for _"],
    ["run\u2e0fcommand", "paragraphos for _"],
    ["send\u2014email", "em dash (its confusables prototype is a CJK stroke)"],
    ["read\ufe58file", "small em dash"],
    ["send\u2500email", "box-drawing line"],
    ["send\u2501email", "heavy box-drawing line"],
    ["http_g\u0454t", "Cyrillic ukrainian ie, absent from the confusables data"],
    ["d\u0454l\u0454te_file", "two Cyrillic letters in one word"],
    ["send_e\u043cail", "Cyrillic em"],
    ["ru\u043f_command", "Cyrillic pe for n"],
    ["\u0455\u0454nd_email", "a mapped and an unmapped Cyrillic letter"],
    ["r\u0454ad_fil\u0435", "unmapped and mapped letters in two words"],
  ])("flags %j as shadowing (%s)", (tool) => {
    expect(compileShadowCheck([...declared, "http_get", "delete_file"])(tool)?.code).toBe("tool.shadowing");
  });

  it.each([
    ["read_\u0444\u0430\u0439\u043b", "read + a whole Russian word"],
    ["list_\u0444\u0430\u0439\u043b\u044b", "list + a whole Russian word"],
    ["send_\u043f\u0438\u0441\u044c\u043c\u043e", "send + a whole Russian word"],
    ["get\u043f\u043e\u0433\u043e\u0434\u0430", "one mixed word, mostly Cyrillic"],
    ["run_\u30b3\u30de\u30f3\u30c9", "run + a Katakana word"],
    ["search\u6587\u6863", "Latin and Han in one word, different length"],
  ])("leaves the bilingual name %j to the rules (%s)", (tool) => {
    expect(check(tool)).toBeNull();
  });

  it.each([
    "get_weather",
    "read_files",
    "send_emails",
    "send_email2",
    "email_send",
    "send_mail",
    "поиск",
    "検索",
  ])("leaves the distinct name %s to the rules", (tool) => {
    expect(check(tool)).toBeNull();
  });

  it("flags a declared name that itself contains hidden characters", () => {
    const withHidden = compileShadowCheck(["send\u200b_email"]);
    expect(withHidden("send\u200b_email")?.code).toBe("tool.hidden_characters");
    expect(withHidden("send_email")?.code).toBe("tool.shadowing");
  });

  it("skips glob patterns and tolerates an empty declaration list", () => {
    expect(compileShadowCheck(["read_*"])("read_x")).toBeNull();
    expect(compileShadowCheck([])("send_email")).toBeNull();
  });

  it("lets two declared names that look alike both through", () => {
    const both = compileShadowCheck(["send_email", "send-email"]);
    expect(both("send_email")).toBeNull();
    expect(both("send-email")).toBeNull();
    expect(both("send.email")?.code).toBe("tool.shadowing");
  });

  it("gives the same answer on a repeated (cached) name", () => {
    expect(check("send-email")?.code).toBe("tool.shadowing");
    expect(check("send-email")?.code).toBe("tool.shadowing");
    expect(check("get_weather")).toBeNull();
    expect(check("get_weather")).toBeNull();
  });

  it("returns a fresh finding each time, so callers may annotate it", () => {
    const first = check("send-email")!;
    first.verdict = "ask";
    expect(check("send-email")?.verdict).toBeUndefined();
  });

  it.each([
    ["a huge name", "x".repeat(1_000_000)],
    ["a huge look-alike", `send${"_".repeat(100_000)}email`],
    ["a lone surrogate", "send_email\ud800"],
    ["an empty name", ""],
    ["only hidden characters", "\u200b\u200b"],
    ["a NUL byte", "send_email\u0000"],
  ])("never throws for %s", (_label, tool) => {
    expect(() => check(tool)).not.toThrow();
  });

  it("denies a non-string tool name instead of throwing", () => {
    expect(check(42 as unknown as string)?.code).toBe("tool.shadowing");
  });
});
