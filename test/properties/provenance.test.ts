import { isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import { stringify as yamlText } from "yaml";
import { describe, expect, it } from "vitest";
import { Warden } from "../../src/gateway/index.js";
import type { Session } from "../../src/gateway/index.js";
import { referenceFieldLabels } from "../../src/policy/reference.js";
import { splitOutput } from "../../src/taint/index.js";
import { compileObject, decideBoth } from "./harness.js";

/**
 * Issue 18: `fields` and `from` over object, JSON-text and YAML-text outputs. The engine's split
 * agrees with the reference reading of `fields` on structured outputs; and the law: a text
 * rendering of an output never carries fewer labels, and never more trusted values, than the
 * structured output.
 */
const RUNS = Number(process.env.TW_PROPERTY_RUNS ?? 2000);
/** Cases that record outputs through a Warden cost ~10x more: a quarter of RUNS. */
const SESSION_RUNS = Math.ceil(RUNS / 4);

const KEYS = ["subject", "sender", "body", "items", "to"] as const;
const LABELS = ["u", "p"] as const;

/** A JSON value over a few keys; leaves are made unique (and long enough to fingerprint) afterwards. */
const rawValue: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constantFrom(
      "leaf",
      "Refund me at LT121000011101001000",
      "ann@corp.example",
      42,
      'He said "wire it"\nto Dana: the \\ account',
    ),
    fc.array(tie("value"), { maxLength: 3 }),
    fc.dictionary(fc.constantFrom(...KEYS), tie("value"), { maxKeys: 3 }),
  ),
})).value;

/** Every string leaf becomes distinct text of 20+ characters; numbers distinct numbers. */
function uniqueLeaves(value: unknown): unknown {
  let n = 0;
  const walk = (v: unknown): unknown => {
    if (typeof v === "string") return `${v} leaf number ${String(++n).padStart(4, "0")} zq`;
    if (typeof v === "number") return 1000 + ++n;
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === "object")
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return walk(value);
}

const output = fc
  .oneof(
    {
      weight: 4,
      arbitrary: fc.oneof(
        fc.array(rawValue, { maxLength: 3 }),
        fc.dictionary(fc.constantFrom(...KEYS), rawValue, { maxKeys: 4 }),
      ),
    },
    { weight: 1, arbitrary: rawValue },
  )
  .map(uniqueLeaves);

const segment = fc.constantFrom(...KEYS, "*", "0");
const fieldsSpec = fc.dictionary(
  fc.array(segment, { minLength: 1, maxLength: 3 }).map((s) => s.join(".")),
  fc.subarray([...LABELS]),
  { maxKeys: 3 },
);
const produces = fc.constantFrom<string[]>([], ["w"], ["u"]);

interface Decl {
  produces: string[];
  fields: Record<string, string[]>;
  declassifies?: string[];
}

function compiledFields(fields: Record<string, string[]>) {
  return Object.entries(fields)
    .map(([path, labels]) => ({ path: path.split("."), labels }))
    .sort(
      (a, b) =>
        b.path.length - a.path.length ||
        a.path.filter((s) => s === "*").length - b.path.filter((s) => s === "*").length,
    );
}

/** The engine's labels as a sorted multiset of `text -> labels` (parts flattened to leaves and keys). */
function engineLeaves(decl: Decl, value: unknown): string[] {
  const out: string[] = [];
  const visit = (v: unknown, labels: string[]) => {
    if (typeof v === "string" || typeof v === "number") out.push(`${v} -> ${[...labels].sort().join(",")}`);
    else if (Array.isArray(v)) for (const x of v) visit(x, labels);
    else if (v !== null && typeof v === "object")
      for (const [k, x] of Object.entries(v)) {
        out.push(`${k} -> ${[...labels].sort().join(",")}`);
        visit(x, labels);
      }
  };
  const split = splitOutput(value, compiledFields(decl.fields), decl.produces, decl.declassifies ?? []);
  for (const part of split.parts) visit(part.value, part.labels);
  return out.sort();
}

function referenceLeaves(decl: Decl, value: unknown): string[] {
  return referenceFieldLabels(decl, value)
    .map((leaf) => `${leaf.text} -> ${leaf.labels.join(",")}`)
    .sort();
}

/** Tie-breaking among equally specific fields is by file order in the reference, and unspecified in the engine: keep them apart. */
function unambiguous(fields: Record<string, string[]>): boolean {
  const shapes = Object.keys(fields).map((p) => {
    const s = p.split(".");
    return `${s.length}/${s.filter((x) => x === "*").length}`;
  });
  return new Set(shapes).size === shapes.length;
}

function policyFor(decl: Decl) {
  return {
    version: 1,
    default: "allow",
    tools: { t: { produces: decl.produces, fields: decl.fields, declassifies: decl.declassifies } },
    rules: [
      { name: "by-word", when: { tool: "use", "args.x": { from: ["t"] } }, verdict: "flag" },
      {
        name: "by-value",
        when: { tool: "use", "args.x": { from: { tools: ["t"], match: "value" } } },
        verdict: "ask",
      },
      { name: "labelled", when: { tool: "use", "args.x": { flows: ["u", "p", "w"] } }, verdict: "deny" },
    ],
  };
}

function recorded(decl: Decl, value: unknown): { warden: Warden; session: Session } {
  const warden = Warden.fromObject(policyFor(decl));
  warden.recordOutput({ tool: "t", session: "s" }, value);
  return { warden, session: warden.session({ id: "s" }) };
}

/** Texts to probe: every leaf and key, their words, and text found nowhere. */
function candidates(value: unknown): string[] {
  const out = new Set<string>(["nowhere to be found at all", "zq"]);
  const visit = (v: unknown) => {
    if (typeof v === "string" || typeof v === "number") {
      out.add(String(v));
      for (const word of String(v).split(" ")) out.add(word);
      // A stretch across a line break or a quote, as an agent copies it.
      out.add(String(v).replace(/\n/g, " ").slice(3, 40));
    } else if (v !== null && typeof v === "object")
      for (const [k, x] of Object.entries(v)) {
        if (!Array.isArray(v)) out.add(k);
        visit(x);
      }
  };
  visit(value);
  return [...out];
}

describe("fields and from over every output form (issue 18)", () => {
  it(`the engine splits a structured output as the reference reads \`fields\` (${RUNS} cases)`, () => {
    let labelled = 0;
    fc.assert(
      fc.property(output, fieldsSpec, produces, fc.boolean(), (value, fields, base, declassify) => {
        fc.pre(unambiguous(fields));
        const decl: Decl = { produces: base, fields, declassifies: declassify ? ["p"] : undefined };
        const engine = engineLeaves(decl, value);
        const reference = referenceLeaves(decl, value);
        if (!isDeepStrictEqual(engine, reference))
          expect({ value, decl, engine }).toEqual({ value, decl, engine: reference });
        if (engine.some((leaf) => leaf.endsWith("u") || leaf.includes("-> p"))) labelled++;
      }),
      { numRuns: RUNS },
    );
    expect(labelled).toBeGreaterThan(RUNS / 10);
  });

  it(`a JSON or YAML rendering never carries fewer labels, nor more trusted values, than the object (${SESSION_RUNS} cases)`, () => {
    const seen = { trusted: 0, flowing: 0, renderings: 0 };
    fc.assert(
      fc.property(
        output,
        fieldsSpec,
        produces,
        fc.constantFrom("json", "yaml"),
        (value, fields, base, form) => {
          const decl: Decl = { produces: base, fields };
          const text = form === "json" ? JSON.stringify(value, null, 2) : yamlText(value);
          const structured = recorded(decl, value).session;
          const rendered = recorded(decl, text).session;
          seen.renderings++;
          for (const label of structured.seen)
            expect([...rendered.seen], `seen ${label} in ${text}`).toContain(label);
          for (const probe of candidates(value)) {
            const want = new Set(structured.flowsInto({ x: probe }).map((hit) => hit.label));
            const got = new Set(rendered.flowsInto({ x: probe }).map((hit) => hit.label));
            for (const label of want)
              expect([...got], `${probe} carries ${label} in ${text}`).toContain(label);
            if (want.size) seen.flowing++;
            for (const set of ["t", "=t"]) {
              if (rendered.inValueSet(probe, set)) {
                expect(structured.inValueSet(probe, set), `${probe} trusted (${set}) only in ${text}`).toBe(
                  true,
                );
                seen.trusted++;
              }
            }
          }
        },
      ),
      { numRuns: SESSION_RUNS },
    );
    expect(seen.trusted).toBeGreaterThan(SESSION_RUNS);
    expect(seen.flowing).toBeGreaterThan(SESSION_RUNS);
  });

  it(`the engine agrees with the reference on \`from\` and \`flows\` after outputs in every form (${SESSION_RUNS} cases)`, () => {
    const outcomes = new Map<string, number>();
    fc.assert(
      fc.property(
        output,
        fieldsSpec,
        produces,
        fc.constantFrom("object", "json", "yaml"),
        fc.nat(),
        (value, fields, base, form, pick) => {
          const decl: Decl = { produces: base, fields };
          const rendered =
            form === "object" ? value : form === "json" ? JSON.stringify(value) : yamlText(value);
          const { warden, session } = recorded(decl, rendered);
          const probes = candidates(value);
          const probe = probes[pick % probes.length];
          const call = {
            tool: "use",
            session: "s",
            args: { x: pick % 5 === 0 ? [probe, probes[0]] : probe },
          };
          const { engine, reference } = decideBoth(warden.policy, call, session);
          if (!isDeepStrictEqual(engine, reference))
            expect({ call, engine }).toEqual({ call, engine: reference });
          for (const key of engine.rule === null ? ["default"] : engine.matched)
            outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
        },
      ),
      { numRuns: SESSION_RUNS },
    );
    for (const rule of ["by-word", "by-value", "labelled", "default"])
      expect(outcomes.get(rule) ?? 0, `${rule}: ${JSON.stringify([...outcomes])}`).toBeGreaterThan(
        SESSION_RUNS / 50,
      );
  });

  it(`the engine agrees with the reference on \`user_asked\` (${RUNS} cases)`, () => {
    const VOCAB = [
      "delete",
      "deleted",
      "undelete",
      "Delete",
      "DELETE",
      "old",
      "drafts",
      "draft",
      "the",
      "É",
      "é",
      "ﬁle",
      "file",
    ];
    const word = fc.constantFrom(...VOCAB);
    const phrase = fc
      .tuple(fc.array(word, { minLength: 1, maxLength: 3 }), fc.boolean())
      .map(([words, prefix]) => `${words.join(" ")}${prefix ? "*" : ""}`);
    const text = fc
      .array(fc.tuple(word, fc.constantFrom(" ", "  ", ", ", "-", ".", "!\n", "")), { maxLength: 8 })
      .map((parts) => parts.map(([w, sep]) => w + sep).join(""));
    const counts = { held: 0, not: 0 };
    fc.assert(
      fc.property(
        fc.array(phrase, { minLength: 1, maxLength: 3 }),
        fc.boolean(),
        fc.array(fc.tuple(text, fc.constantFrom(["user"], ["upload"], ["user", "x"])), { maxLength: 3 }),
        (phrases, all, inputs) => {
          const compiled = compileObject({
            version: 1,
            default: "allow",
            rules: [
              { name: "asked", when: { user_asked: all ? { all: phrases } : phrases }, verdict: "flag" },
            ],
          });
          if (!compiled) expect.fail(`did not compile: ${JSON.stringify(phrases)}`);
          const warden = new Warden(compiled);
          const session = warden.session({ id: "s" });
          for (const [value, labels] of inputs) session.input(value, { labels });
          const call = { tool: "t", session: "s", args: {} };
          const { engine, reference } = decideBoth(compiled, call, session);
          if (!isDeepStrictEqual(engine, reference))
            expect({ phrases, all, inputs, engine }).toEqual({ phrases, all, inputs, engine: reference });
          if (engine.rule === "asked") counts.held++;
          else counts.not++;
        },
      ),
      { numRuns: RUNS },
    );
    expect(counts.held).toBeGreaterThan(RUNS / 10);
    expect(counts.not).toBeGreaterThan(RUNS / 10);
  });
});
