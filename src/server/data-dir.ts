import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { resolveAuditKey } from "../audit/chain.js";
import { ApiKeyStore } from "./keys.js";

/** Where the server keeps its files; every secret in it is mode 0600. */
export interface DataDir {
  dir: string;
  keysFile: string;
  /** The admin key written on first start (the only plaintext key on disk). */
  adminKeyFile: string;
  stateDb: string;
  auditDb: string;
  auditLog: string;
  spoolDir: string;
  policiesDir: string;
}

export function dataDirPaths(dir: string): DataDir {
  const abs = resolve(dir);
  return {
    dir: abs,
    keysFile: join(abs, "keys.json"),
    adminKeyFile: join(abs, "admin.key"),
    stateDb: join(abs, "state.db"),
    auditDb: join(abs, "audit.db"),
    auditLog: join(abs, "audit.jsonl"),
    spoolDir: join(abs, "spool"),
    policiesDir: join(abs, "policies"),
  };
}

/** What first start created, so the caller can say where it is (never what it is). */
export interface Bootstrap {
  paths: DataDir;
  keys: ApiKeyStore;
  /** Set when this start wrote a new admin key. */
  createdAdminKey?: string;
  /** The audit HMAC key, and the file it came from when it is one of ours. */
  auditKey: Buffer;
  createdAuditKeyFile?: string;
  auditKeySource: string;
}

/**
 * Creates the data directory (0700) and, on first start, an admin API key (`admin.key`) and an
 * audit HMAC key (`audit.key`, unless `TOOLWARDEN_AUDIT_KEY[_FILE]` gives one), both 0600.
 */
export function bootstrapDataDir(
  dir: string,
  env: Record<string, string | undefined> = process.env,
): Bootstrap {
  const paths = dataDirPaths(dir);
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  narrowModes(paths.dir, 2);
  const keys = ApiKeyStore.open(paths.keysFile);
  const result: Bootstrap = { paths, keys, auditKey: Buffer.alloc(0), auditKeySource: "" };
  if (keys.list().every((key) => key.role !== "admin")) {
    const { key } = keys.create({ role: "admin", name: "admin" });
    writeSecret(paths.adminKeyFile, key);
    result.createdAdminKey = paths.adminKeyFile;
  }
  const fromEnv = resolveAuditKey({ env });
  if (fromEnv) {
    result.auditKey = fromEnv;
    result.auditKeySource = env.TOOLWARDEN_AUDIT_KEY
      ? "TOOLWARDEN_AUDIT_KEY"
      : `${env.TOOLWARDEN_AUDIT_KEY_FILE}`;
    return result;
  }
  const keyFile = join(paths.dir, "audit.key");
  if (!existsSync(keyFile)) {
    writeSecret(keyFile, randomBytes(32).toString("hex"));
    result.createdAuditKeyFile = keyFile;
  }
  result.auditKey = resolveAuditKey({ keyFile }) as Buffer;
  result.auditKeySource = keyFile;
  return result;
}

function writeSecret(file: string, text: string): void {
  writeFileSync(file, `${text}\n`, { mode: 0o600 });
  // `mode` applies only to a new file, and the umask may narrow it: make it exact.
  chmodSync(file, 0o600);
}

/**
 * Every file of the data directory is its owner's only (0600, directories 0700): what an older
 * version created wider is narrowed on start. New files are created that way by the sinks and stores.
 */
function narrowModes(dir: string, depth: number): void {
  const stat = lstatSync(dir);
  if (stat.mode & 0o077) chmodSync(dir, 0o700);
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (depth > 0) narrowModes(path, depth - 1);
    } else if (entry.isFile() && lstatSync(path).mode & 0o077) {
      chmodSync(path, 0o600);
    }
  }
}
