import { relative } from "node:path";
import { AUDIT_KEY_OPTION, CliError, parseFlags, STORE_OPTION } from "./util.js";
import type { Command } from "./util.js";
import { help } from "./validate.js";

const USAGE =
  "toolwarden serve -p POLICY [--port 8080] [--host 127.0.0.1] [--data DIR] [--store URL] [--store-timeout MS] [--session-ttl SECONDS] [--max-sessions-per-agent N] [--audit-pg URL] [--audit-durability fsync|write] [--audit-key-file FILE] [--cors ORIGIN]... [--no-watch] [--observe]";

/** `toolwarden serve`: the HTTP API and dashboard. */
export const serve: Command = {
  summary: "run the HTTP decision API and the approvals/audit dashboard",
  usage: USAGE,
  options: [
    "-p, --policy FILE       the policy to serve (TOOLWARDEN_POLICY); watched and reloaded unless --no-watch",
    "--port N                the port (TOOLWARDEN_PORT; default 8080; 0: any free port)",
    "--host ADDR             the address to listen on (TOOLWARDEN_HOST; default 127.0.0.1)",
    "--data DIR              keys, state and audit trail (TOOLWARDEN_DATA; default .toolwarden)",
    STORE_OPTION,
    "--store-timeout MS      deadline of each state store operation (TOOLWARDEN_STORE_TIMEOUT_MS)",
    "--session-ttl SECONDS   how long an idle session is kept",
    "--max-sessions-per-agent N  most open sessions one agent may hold",
    "--audit-pg URL          keep the audit trail in PostgreSQL (`postgres://user@host/db`) besides the JSONL log",
    "--audit-durability fsync|write  when a decision is answered: after its audit record is fdatasync'ed",
    "                        (fsync, default: survives a power loss) or written to the OS (write: survives a",
    "                        crash of toolwarden, not of the machine; fewer disk flushes, more decisions/s)",
    AUDIT_KEY_OPTION,
    "--cors ORIGIN           allow browser calls from this origin (repeatable)",
    "--no-watch              do not reload the policy when its file changes",
    "--observe               decide and audit, but let every call run (mode: observe)",
  ],
  async run(argv) {
    const { values } = parseFlags(
      argv,
      {
        policy: { type: "string", short: "p" },
        port: { type: "string" },
        host: { type: "string" },
        data: { type: "string" },
        store: { type: "string" },
        "store-timeout": { type: "string" },
        "session-ttl": { type: "string" },
        "max-sessions-per-agent": { type: "string" },
        "audit-pg": { type: "string" },
        "audit-durability": { type: "string" },
        "audit-key-file": { type: "string" },
        cors: { type: "string", multiple: true },
        "no-watch": { type: "boolean" },
        observe: { type: "boolean" },
      },
      this.usage,
    );
    if (values.help) return help(this);
    const env = process.env;
    const policy = values.policy ?? env.TOOLWARDEN_POLICY;
    if (!policy) throw new CliError(`no policy given: pass -p POLICY\nusage: ${USAGE}`);
    const portText = values.port ?? env.TOOLWARDEN_PORT ?? "8080";
    const port = Number(portText);
    if (!/^\d+$/.test(portText) || port > 65535)
      throw new CliError(`--port must be a number from 0 to 65535, not \`${portText}\``);
    const timeoutText = values["store-timeout"] ?? env.TOOLWARDEN_STORE_TIMEOUT_MS;
    if (timeoutText !== undefined && !/^[1-9]\d{0,6}$/.test(timeoutText))
      throw new CliError(`--store-timeout must be a positive number of milliseconds, not \`${timeoutText}\``);
    const ttlText = values["session-ttl"] ?? env.TOOLWARDEN_SESSION_TTL;
    if (ttlText !== undefined && !/^[1-9]\d{0,8}$/.test(ttlText))
      throw new CliError(`--session-ttl must be a positive number of seconds, not \`${ttlText}\``);
    const perAgentText = values["max-sessions-per-agent"] ?? env.TOOLWARDEN_MAX_SESSIONS_PER_AGENT;
    if (perAgentText !== undefined && !/^[1-9]\d{0,8}$/.test(perAgentText))
      throw new CliError(`--max-sessions-per-agent must be a positive integer, not \`${perAgentText}\``);
    const durability = values["audit-durability"] ?? env.TOOLWARDEN_AUDIT_DURABILITY ?? "fsync";
    if (durability !== "fsync" && durability !== "write")
      throw new CliError(`--audit-durability must be \`fsync\` or \`write\`, not \`${durability}\``);
    const { startServer } = await import("../server/index.js");
    const server = await startServer({
      policy,
      port,
      host: values.host ?? env.TOOLWARDEN_HOST ?? "127.0.0.1",
      dataDir: values.data ?? env.TOOLWARDEN_DATA ?? ".toolwarden",
      store: values.store ?? env.TOOLWARDEN_STORE,
      storeTimeoutMs: timeoutText === undefined ? undefined : Number(timeoutText),
      sessions: {
        ttlMs: ttlText === undefined ? undefined : Number(ttlText) * 1000,
        maxPerAgent: perAgentText === undefined ? undefined : Number(perAgentText),
        // How many sessions one process keeps rebuilt in memory (the store holds them all).
        cached: /^[1-9]\d{0,8}$/.test(env.TOOLWARDEN_SESSION_CACHE ?? "")
          ? Number(env.TOOLWARDEN_SESSION_CACHE)
          : undefined,
      },
      auditPg: values["audit-pg"] ?? env.TOOLWARDEN_AUDIT_PG,
      auditDurability: durability,
      // The flag outranks the environment; without either the key is `audit.key` in the data dir.
      ...(values["audit-key-file"]
        ? {
            env: {
              ...env,
              TOOLWARDEN_AUDIT_KEY: undefined,
              TOOLWARDEN_AUDIT_KEY_FILE: values["audit-key-file"],
            },
          }
        : {}),
      corsOrigins: values.cors,
      watch: !values["no-watch"],
      observe: values.observe,
    });
    const show = (file: string) => {
      const rel = relative(process.cwd(), file);
      return rel && !rel.startsWith("..") ? rel : file;
    };
    const lines = [
      `toolwarden: serving policy \`${server.policies.active.name}\` (${server.policies.active.hash.slice(0, 12)})`,
      `  dashboard: ${server.url}/`,
      `  api:       ${server.url}/v1  (OpenAPI: ${server.url}/openapi.json)`,
      `  data:      ${show(server.paths.dir)}`,
    ];
    if (server.createdAdminKey)
      lines.push(
        `  a new admin API key was written to ${show(server.createdAdminKey)} (mode 0600); sign in with it`,
      );
    else
      lines.push(
        `  sign in with an admin or approver key (the first admin key is in ${show(server.paths.adminKeyFile)})`,
      );
    if (server.createdAuditKeyFile)
      lines.push(`  a new audit HMAC key was written to ${show(server.createdAuditKeyFile)} (mode 0600)`);
    process.stdout.write(`${lines.join("\n")}\n`);
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off("SIGINT", stop);
        process.off("SIGTERM", stop);
        process.stderr.write("toolwarden: shutting down\n");
        resolve();
      };
      process.on("SIGINT", stop);
      process.on("SIGTERM", stop);
    });
    await server.close();
    return 0;
  },
};
