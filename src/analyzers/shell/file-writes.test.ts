import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fileEffect, sedScript } from "./file-writes.js";

describe("sedScript", () => {
  it.each([
    ["p", undefined],
    ["1,5p; $d", undefined],
    ["/start/,/end/{s/a/b/g;p}", undefined],
    ["\\%/usr%d", undefined],
    ["s|a|b|2;y/ab/ba/", undefined],
    ["a\\\nappended text with w and e", undefined],
    ["$!N; :loop; b loop", undefined],
    ["r /etc/hosts", undefined],
    ["w /dev/stdout", undefined],
    ["w out.txt", "writes"],
    ["/x/W out.txt", "writes"],
    ["s/a/b/gw out.txt", "writes"],
    ["1e id", "runs"],
    ["s/.*/id/e", "runs"],
    ["1!e id", "runs"],
    ["s/a/b", "unknown"],
    ["k", "unknown"],
  ] as const)("%j: %s", (script, effect) => {
    expect(sedScript(script)).toBe(effect);
  });

  it("ends on any input", () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[\s\S]{0,40}$/), (script) => {
        expect(["writes", "runs", "unknown", undefined]).toContain(sedScript(script));
      }),
      { numRuns: 500 },
    );
  });
});

describe("fileEffect", () => {
  it.each([
    [["sort", "-o", "x", "in"], "writes"],
    [["sort", "--", "-o"], undefined],
    [["sort", "-o", "/dev/null"], undefined],
    [["uniq", "-f", "2", "in", "out"], "writes"],
    [["uniq", "-f", "2", "in"], undefined],
    [["tee", "-a", "log"], "writes"],
    [["less", "-olog.txt", "f"], "writes"],
    [["find", "-L", ".", "-newermt", "2024-01-01", "-delete"], "writes"],
    [["find", ".", "-exec", "grep", "-delete", "{}", ";"], undefined],
    [["find", ".", "-fprintf", "/dev/null", "%p"], undefined],
    [["tar", "-C", "/tmp", "-xf", "a.tar"], "writes"],
    [["tar", "--extract", "--to-stdout", "--file=a.tar"], undefined],
    [["tar", "-rf", "a.tar", "b"], "writes"],
    [["git", "format-patch", "-o", "out", "HEAD~3"], "writes"],
    [["git", "diff", "--output", "/dev/null"], undefined],
    [["sed", "--expression=w out", "f"], "writes"],
    [["sed", "-n", "--", "p", "f"], undefined],
    [["sort", null], "unknown"],
    [["grep", "-o", "x"], undefined],
  ] as const)("%j: %s", (words, kind) => {
    expect(fileEffect(words)?.kind).toBe(kind);
  });

  it("ends on any words", () => {
    const programs = fc.constantFrom("find", "sort", "uniq", "tee", "less", "sed", "tar", "git");
    const word = fc.oneof(fc.constant(null), fc.stringMatching(/^-{0,2}[a-zA-Z0-9=/.;+{}-]{0,8}$/));
    fc.assert(
      fc.property(programs, fc.array(word, { maxLength: 8 }), (program, rest) => {
        const effect = fileEffect([program, ...rest]);
        expect(["writes", "runs", "unknown", undefined]).toContain(effect?.kind);
      }),
      { numRuns: 500 },
    );
  });
});
