import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { z } from "zod";
import { PolicyLoadError } from "../../core/index.js";
import type { Agent, PolicyIssue } from "../../core/index.js";
import { issueAtPath, parseSource, schemaIssues } from "../../policy/source.js";
import type { PathSegment } from "../../policy/source.js";
import type { UpstreamSpec } from "./upstream.js";

/** Shortest bearer token accepted: a shorter one can be guessed. */
export const MIN_TOKEN_LENGTH = 16;

/** Server ids become tool-name prefixes (`<id>__<tool>`), so they keep to MCP's tool-name characters and never contain the separator. */
const SERVER_ID = /^[A-Za-z0-9][A-Za-z0-9-]*(_[A-Za-z0-9-]+)*$/;

const serverSchema = z
  .object({
    command: z.string().min(1).optional(),
    args: z.array(z.string()).optional(),
    env: z.record(z.string(), z.string()).optional(),
    cwd: z.string().optional(),
    url: z.url({ protocol: /^https?$/ }).optional(),
    headers: z.record(z.string(), z.string()).optional(),
  })
  .strict()
  .superRefine((server, ctx) => {
    if ((server.command === undefined) === (server.url === undefined)) {
      ctx.addIssue({
        code: "custom",
        message: "a server needs exactly one of `command` (stdio) or `url` (Streamable HTTP)",
      });
    }
    for (const key of server.url !== undefined ? (["args", "env", "cwd"] as const) : (["headers"] as const)) {
      if (server[key] !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: [key],
          message: `\`${key}\` applies only to ${server.url !== undefined ? "`command`" : "`url`"} servers`,
        });
      }
    }
  });

const tokenSchema = z
  .object({
    token: z
      .string()
      .min(MIN_TOKEN_LENGTH, `a token needs at least ${MIN_TOKEN_LENGTH} characters`)
      .optional(),
    env: z.string().min(1).optional(),
    agent: z.object({ id: z.string().min(1) }).catchall(z.unknown()),
  })
  .strict()
  .refine((token) => (token.token === undefined) !== (token.env === undefined), {
    message: "a token needs exactly one of `token` (the secret) or `env` (the variable that holds it)",
  });

/** The raw shape of a gateway config file. */
export const gatewayConfigSchema = z
  .object({
    version: z.literal(1).optional(),
    listen: z
      .object({
        host: z.string().min(1).optional(),
        port: z.number().int().min(0).max(65535).optional(),
        path: z.string().startsWith("/").optional(),
      })
      .strict()
      .optional(),
    policy: z.string().min(1),
    audit: z.string().min(1).optional(),
    /** A file holding the audit HMAC key (else `TOOLWARDEN_AUDIT_KEY` / `TOOLWARDEN_AUDIT_KEY_FILE`). */
    audit_key_file: z.string().min(1).optional(),
    store: z.string().min(1).optional(),
    pins: z.string().min(1).optional(),
    approvals: z.object({ wait: z.number().nonnegative().optional() }).strict().optional(),
    servers: z.record(
      z.string().regex(SERVER_ID, "a server id is letters, digits, `-` and single `_`"),
      serverSchema,
    ),
    tokens: z.array(tokenSchema).min(1, "the gateway needs at least one token"),
  })
  .strict();

const KNOWN_KEYS: ReadonlyArray<[RegExp, string[]]> = [
  [/^$/, Object.keys(gatewayConfigSchema.shape)],
  [/^listen$/, ["host", "port", "path"]],
  [/^approvals$/, ["wait"]],
  [/^servers\/[^/]+$/, ["command", "args", "env", "cwd", "url", "headers"]],
  [/^tokens\/\d+$/, ["token", "env", "agent"]],
];

/** A validated gateway config with paths resolved against the file and `${VAR}` filled in. */
export interface GatewayConfig {
  file: string;
  host: string;
  port: number;
  path: string;
  policy: string;
  audit?: string;
  auditKeyFile?: string;
  store?: string;
  pins: string;
  /** How long a call that needs approval waits (ms). */
  approvalWait: number;
  servers: Record<string, UpstreamSpec>;
  tokens: Array<{ token: string; agent: Agent }>;
}

/**
 * Reads and checks a gateway config (YAML or JSON). Every problem is reported as file:line:col
 * with a code frame, like a policy error: throws `PolicyLoadError`.
 */
export function loadGatewayConfig(
  file: string,
  env: Record<string, string | undefined> = process.env,
): GatewayConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    const reason =
      (error as NodeJS.ErrnoException).code === "ENOENT" ? "file not found" : (error as Error).message;
    throw new PolicyLoadError([{ file, line: 1, col: 1, message: `cannot read gateway config: ${reason}` }]);
  }
  return parseGatewayConfig(file, text, env);
}

/** `loadGatewayConfig` for text already read. */
export function parseGatewayConfig(
  file: string,
  text: string,
  env: Record<string, string | undefined> = process.env,
): GatewayConfig {
  const { source, issues } = parseSource(file, text);
  if (issues.length) throw new PolicyLoadError(issues);
  const value = source.doc.toJS({ maxAliasCount: 100 });
  const result = gatewayConfigSchema.safeParse(value ?? {});
  if (!result.success) throw new PolicyLoadError(schemaIssues(source, result.error.issues, KNOWN_KEYS));
  const raw = result.data;
  const problems: PolicyIssue[] = [];
  const fill = (value: string, at: PathSegment[]) =>
    value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
      const found = env[name];
      if (found === undefined)
        problems.push(issueAtPath(source, at, `environment variable \`${name}\` is not set`));
      return found ?? "";
    });
  const fillAll = (record: Record<string, string> | undefined, at: PathSegment[]) =>
    record && Object.fromEntries(Object.entries(record).map(([k, v]) => [k, fill(v, [...at, k])]));

  const base = dirname(resolve(file));
  const servers: Record<string, UpstreamSpec> = {};
  for (const [id, spec] of Object.entries(raw.servers)) {
    const at = ["servers", id];
    servers[id] =
      spec.url !== undefined
        ? { url: fill(spec.url, [...at, "url"]), headers: fillAll(spec.headers, [...at, "headers"]) }
        : {
            command: spec.command as string,
            args: spec.args?.map((arg, i) => fill(arg, [...at, "args", i])),
            env: fillAll(spec.env, [...at, "env"]),
            cwd: spec.cwd === undefined ? undefined : resolve(base, spec.cwd),
          };
  }
  const tokens = raw.tokens.map((entry, i) => {
    let token = entry.token;
    if (entry.env !== undefined) {
      token = env[entry.env];
      if (token === undefined)
        problems.push(
          issueAtPath(source, ["tokens", i, "env"], `environment variable \`${entry.env}\` is not set`),
        );
      else if (token.length < MIN_TOKEN_LENGTH) {
        problems.push(
          issueAtPath(
            source,
            ["tokens", i, "env"],
            `the token in \`${entry.env}\` has ${token.length} characters; at least ${MIN_TOKEN_LENGTH} are needed`,
          ),
        );
      }
    }
    return { token: token ?? "", agent: entry.agent as Agent };
  });
  const seen = new Map<string, number>();
  tokens.forEach((entry, i) => {
    if (!entry.token) return;
    const first = seen.get(entry.token);
    if (first !== undefined)
      problems.push(
        issueAtPath(
          source,
          ["tokens", i],
          `token ${i + 1} repeats token ${first + 1}: each token names one agent`,
        ),
      );
    else seen.set(entry.token, i);
  });
  if (problems.length) throw new PolicyLoadError(problems);
  return {
    file,
    host: raw.listen?.host ?? "127.0.0.1",
    port: raw.listen?.port ?? 8080,
    path: raw.listen?.path ?? "/mcp",
    policy: resolve(base, raw.policy),
    audit: raw.audit === undefined ? undefined : resolve(base, raw.audit),
    auditKeyFile: raw.audit_key_file === undefined ? undefined : resolve(base, raw.audit_key_file),
    store: raw.store,
    pins: resolve(base, raw.pins ?? ".toolwarden/pins.jsonl"),
    approvalWait: (raw.approvals?.wait ?? 0) * 1000,
    servers,
    tokens,
  };
}
