import { CONSTRAINT_KINDS, DETECTORS } from "../analyzers/index.js";
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
  }
  return results;
}
