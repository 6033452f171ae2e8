import { CONSTRAINT_KINDS, DETECTORS } from "../analyzers/index.js";
import { compileSql } from "../analyzers/sql/sql-kind.js";
import type { Finding } from "../core/index.js";
import { measureSync } from "./harness.js";
import type { BenchResult } from "./harness.js";

/** Typical and large arguments per analyzer, checked the way the engine checks them. */
const CASES: Array<{ kind: string; options: unknown; label: string; value: string }> = [
  {
    kind: "url",
    options: { private: "block" },
    label: "url: typical https URL",
    value: "https://api.github.com/repos/nodejs/node/issues?state=open",
  },
  {
    kind: "url",
    options: { private: "block" },
    label: "url: hex-encoded loopback (denied)",
    value: "http://0x7f.1/admin",
  },
  {
    kind: "path",
    options: { within: ["/workspace"] },
    label: "path: typical file",
    value: "/workspace/src/index.ts",
  },
  {
    kind: "path",
    options: { within: ["/workspace"] },
    label: "path: double-encoded traversal (denied)",
    value: "/workspace/%252e%252e/etc/passwd",
  },
  {
    kind: "sql",
    options: { allow: ["select"], dialect: "postgresql" },
    label: "sql: typical select",
    value: "SELECT id, name FROM users WHERE email = 'a@b.example' LIMIT 10",
  },
  {
    kind: "sql",
    options: { allow: ["select"], dialect: "postgresql" },
    label: "sql: 10 KB select",
    value: tenKbSql(),
  },
  {
    kind: "shell",
    options: { programs: ["ls", "cat", "grep", "git log"] },
    label: "shell: typical pipeline",
    value: "git log --oneline -n 20 | grep fix",
  },
  {
    kind: "shell",
    options: { programs: ["ls", "cat", "grep", "git log"] },
    label: "shell: 10 KB command",
    value: tenKbShell(),
  },
];

function tenKbSql(): string {
  const columns = Array.from({ length: 400 }, (_, i) => `col_${i}`).join(", ");
  let sql = `SELECT ${columns} FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.status = 'open'`;
  while (sql.length < 10_000) sql += ` AND o.note <> 'x${sql.length}'`;
  return sql;
}

function tenKbShell(): string {
  let command = "grep -r";
  while (command.length < 10_000) command += ` -e pattern${command.length}`;
  return `${command} src | cat`;
}

/** Per-analyzer cost on typical and large arguments; kinds not registered are skipped. */
export async function analyzerScenarios(): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  const out: Finding[] = [];
  for (const c of CASES) {
    const kind = CONSTRAINT_KINDS.get(c.kind);
    if (!kind) continue;
    await kind.load?.(kind.options.parse(c.options));
    const check = kind.compile(kind.options.parse(c.options));
    const large = c.value.length > 5_000;
    // Distinct texts every time, so the SQL analyzer's decision cache is not what is measured.
    let n = 0;
    const vary = c.kind === "sql";
    results.push(
      measureSync(
        `${c.label} (${c.value.length} chars)`,
        () => {
          out.length = 0;
          check(vary ? `${c.value} /* ${n++} */` : c.value, "arg", out);
          return out.length;
        },
        large ? { batch: 20, samples: 15 } : { batch: 2_000, samples: 15 },
      ),
    );
  }
  // The postgresql dialect on node-sql-parser (the analyzer before libpg-query), same queries, same
  // run: the ratio to the rows above is the change.
  for (const c of CASES.filter((c) => c.kind === "sql")) {
    const check = compileSql(c.options as never, false);
    let n = 0;
    results.push(
      measureSync(
        `${c.label} (${c.value.length} chars) [node-sql-parser, before]`,
        () => {
          out.length = 0;
          check(`${c.value} /* ${n++} */`, "arg", out);
          return out.length;
        },
        c.value.length > 5_000 ? { batch: 5, samples: 9 } : { batch: 200, samples: 15 },
      ),
    );
  }
  const secrets = DETECTORS.get("secrets");
  if (secrets) {
    const clean = "Thanks for reaching out! Your order ORD-004211 shipped on Monday. "
      .repeat(16)
      .slice(0, 1024);
    results.push(
      measureSync("secrets: 1 KB clean text", () => {
        out.length = 0;
        secrets.scan(clean, "arg", out);
        return out.length;
      }),
    );
    const hostile = hostileForDecoding();
    results.push(
      measureSync(
        `secrets: ${Math.round(hostile.length / 1024)} KB built to maximise decoding work`,
        () => {
          out.length = 0;
          secrets.scan(hostile, "arg", out);
          return out.length;
        },
        { batch: 5, samples: 9 },
      ),
    );
  }
  return results;
}

/**
 * Text that makes the secrets detector decode as much as it may: base64 nested six deep (each
 * layer decodes to printable text holding the next), side by side, and every whole-text layer
 * (percent-encoding, `\u` escapes, fullwidth characters) present, ~256 KB in all.
 */
export function hostileForDecoding(): string {
  let nested = "password=Zq8Lm2Pz9Rt4Vw8Ky1Nb6Hc3";
  for (let i = 0; i < 6; i++) {
    const layer = Buffer.from(nested).toString("base64");
    nested = `${layer} ${layer}`;
  }
  let text = `${"%41\\u0041\uff21 ".repeat(500)}`;
  while (text.length < 256 * 1024) text += `${nested.slice(0, 40_000)} `;
  return text;
}
