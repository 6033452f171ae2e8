import { homedir } from "node:os";
import { mkdir, open } from "node:fs/promises";
import { dirname, join } from "node:path";
import {
  AUDIT_KEY_WAYS,
  canonicalJson,
  digestEquals,
  hmacHex,
  resolveAuditKey,
  sha256Hex,
  ZERO_HASH,
} from "../../audit/chain.js";
import type { AuditKeyOptions } from "../../audit/chain.js";
import { ToolwardenError } from "../../core/index.js";
import { createLock, lockOwner, removeLock } from "../../core/lock-file.js";
import type { ListedTool } from "./risk.js";

/** Where pins live unless told otherwise (relative to the working directory). */
export const DEFAULT_PINS_PATH = ".toolwarden/pins.jsonl";

/**
 * Where the proxy and the pin commands keep pins unless told (`--pins`, `TOOLWARDEN_PINS`): one
 * file per user, `$XDG_STATE_HOME/toolwarden/pins.jsonl` (`~/.local/state/...`; `%LOCALAPPDATA%`
 * on Windows), the same whichever directory a client starts the proxy in. (`DEFAULT_PINS_PATH`
 * stays the gateway's, relative to its config file.)
 */
export function defaultPinsPath(
  env: Record<string, string | undefined> = process.env,
  home: string = homedir(),
): string {
  if (env.TOOLWARDEN_PINS) return env.TOOLWARDEN_PINS;
  const state =
    process.platform === "win32"
      ? env.LOCALAPPDATA || join(home, "AppData", "Local")
      : env.XDG_STATE_HOME || join(home, ".local", "state");
  return join(state, "toolwarden", "pins.jsonl");
}

/** What identifies one version of one tool: its server, its name and hashes of what the model reads. */
export interface ToolFingerprint {
  server: string;
  tool: string;
  /** Hex SHA-256 of the canonical JSON of the input schema. */
  schemaHash: string;
  /** Hex SHA-256 of the description (and title, which the model reads too). */
  descriptionHash: string;
  /** Hex SHA-256 of the tool's annotations (read-only, destructive, open-world, idempotent hints). */
  annotationsHash: string;
}

/** One line of the ledger: a pin or a revocation, chained and signed like the audit log. */
export interface PinEntry {
  seq: number;
  prev: string;
  time: string;
  action: "pin" | "revoke";
  server: string;
  tool: string;
  schemaHash?: string;
  descriptionHash?: string;
  /** Absent on pins written before annotations were pinned: they are then not compared. */
  annotationsHash?: string;
  annotations?: unknown;
  /** The pinned text, kept so a change can be shown and the approved version served. */
  description?: string;
  title?: string;
  inputSchema?: unknown;
  /** Who pinned: `first-use`, `scan`, `approve:<user>`. */
  by: string;
  reason?: string;
  hash: string;
  hmac: string;
}

/** The pin ledger is unreadable, tampered with, or locked. */
export class PinLedgerError extends ToolwardenError {
  constructor(message: string) {
    super("pin_ledger", message);
  }
}

/** The fingerprint of a tool as listed by a server. */
export function fingerprintTool(server: string, tool: ListedTool): ToolFingerprint {
  return {
    server,
    tool: tool.name,
    schemaHash: sha256Hex(canonicalJson(tool.inputSchema ?? null)),
    descriptionHash: sha256Hex(
      canonicalJson({ description: tool.description ?? "", title: tool.title ?? "" }),
    ),
    annotationsHash: sha256Hex(canonicalJson(tool.annotations ?? null)),
  };
}

/**
 * What differs between a pin and a fingerprint: `description`, `input schema`, `annotations`;
 * empty when equal. A server that turns a tool's `destructiveHint` off or its `readOnlyHint` on
 * changes what a client shows and allows: that is a pin change like any other.
 */
export function fingerprintChanges(
  pin: Pick<PinEntry, "schemaHash" | "descriptionHash" | "annotationsHash">,
  now: ToolFingerprint,
): string[] {
  const changes: string[] = [];
  if (pin.descriptionHash !== now.descriptionHash) changes.push("description");
  if (pin.schemaHash !== now.schemaHash) changes.push("input schema");
  if (pin.annotationsHash !== undefined && pin.annotationsHash !== now.annotationsHash)
    changes.push("annotations");
  return changes;
}

export interface PinLedgerOptions extends AuditKeyOptions {
  /** Keep a ledger without HMAC when no key is set (hash chain only). Default true; false demands a key. */
  allowUnsigned?: boolean;
  /** Only reading (`pins list`): without a key, check the hash chain and skip the signatures. */
  readOnly?: boolean;
  now?: () => number;
}

const LOCK_WAIT_MS = 5_000;
const LOCK_STALE_MS = 30_000;

/**
 * The pinned fingerprints of MCP tools: an append-only JSONL file, each line hash-chained to the
 * one before and signed with HMAC-SHA256 (the audit key: `TOOLWARDEN_AUDIT_KEY` or a key file).
 * Several processes share one ledger (one proxy per server is the usual setup): appends take a
 * short exclusive lock and first read what others wrote. A broken chain or signature refuses to
 * load: pins that cannot be trusted must not admit a tool.
 */
export class PinLedger {
  readonly path: string;
  private readonly key: Buffer | undefined;
  private readonly now: () => number;
  private readonly pins = new Map<string, PinEntry>();
  private head = { seq: 0, hash: ZERO_HASH };
  /** Bytes of the file read so far (always the end of a complete line). */
  private offset = 0;
  private entries = 0;

  private constructor(path: string, key: Buffer | undefined, now: () => number) {
    this.path = path;
    this.key = key;
    this.now = now;
  }

  /** Opens (or starts) a ledger and verifies every line. Throws `PinLedgerError`. */
  static async open(path: string, options: PinLedgerOptions = {}): Promise<PinLedger> {
    let key: Buffer | undefined;
    try {
      key = resolveAuditKey(options);
    } catch (error) {
      throw new PinLedgerError((error as Error).message);
    }
    if (!key && options.allowUnsigned === false) {
      throw new PinLedgerError(`no key to sign pins: ${AUDIT_KEY_WAYS}`);
    }
    const ledger = new PinLedger(path, key, options.now ?? Date.now);
    ledger.readOnly = options.readOnly === true && !key;
    await ledger.refresh();
    return ledger;
  }

  private readOnly = false;
  /** Read without the key: signed entries whose signatures were not checked. */
  unverified = false;

  /** True when entries are signed with a key. */
  get signed(): boolean {
    return this.key !== undefined;
  }

  /** Number of entries read. */
  get size(): number {
    return this.entries;
  }

  /** Reads what other processes appended since the last read, verifying it. */
  async refresh(): Promise<void> {
    let text: Buffer;
    try {
      const handle = await open(this.path, "r");
      try {
        const { size } = await handle.stat();
        if (size < this.offset)
          throw new PinLedgerError(`pin ledger \`${this.path}\` shrank; it was truncated or replaced`);
        if (size === this.offset) return;
        text = Buffer.alloc(size - this.offset);
        await handle.read(text, 0, text.length, this.offset);
      } finally {
        await handle.close();
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") {
        if (this.offset > 0) throw new PinLedgerError(`pin ledger \`${this.path}\` was deleted`);
        return;
      }
      throw error;
    }
    // Only complete lines: an unterminated tail is a write in progress (or torn by a crash).
    const end = text.lastIndexOf(0x0a);
    if (end < 0) return;
    const lines = text.subarray(0, end).toString("utf8").split("\n");
    for (const line of lines) {
      this.offset += Buffer.byteLength(line, "utf8") + 1;
      if (line.trim() === "") continue;
      this.accept(this.verify(line));
    }
  }

  private verify(line: string): PinEntry {
    const where = `pin ledger \`${this.path}\` entry ${this.head.seq + 1}`;
    let entry: PinEntry;
    try {
      entry = JSON.parse(line) as PinEntry;
    } catch {
      throw new PinLedgerError(`${where} is not JSON`);
    }
    const { hash, hmac, ...body } = entry;
    if (entry.seq !== this.head.seq + 1 || entry.prev !== this.head.hash) {
      throw new PinLedgerError(
        `${where}: the chain is broken (seq ${entry.seq}, expected ${this.head.seq + 1})`,
      );
    }
    if (typeof hash !== "string" || !digestEquals(sha256Hex(canonicalJson(body)), hash)) {
      throw new PinLedgerError(`${where}: its hash does not match its content (edited)`);
    }
    if (this.key) {
      if (typeof hmac !== "string" || !digestEquals(hmacHex(this.key, hash), hmac)) {
        throw new PinLedgerError(`${where}: bad signature (wrong key, or written without one)`);
      }
    } else if (hmac && this.readOnly) {
      this.unverified = true;
    } else if (hmac) {
      throw new PinLedgerError(`${where} is signed; to verify it, ${AUDIT_KEY_WAYS}`);
    }
    return entry;
  }

  private accept(entry: PinEntry): void {
    this.head = { seq: entry.seq, hash: entry.hash };
    this.entries++;
    const id = pinKey(entry.server, entry.tool);
    if (entry.action === "pin") this.pins.set(id, entry);
    else this.pins.delete(id);
  }

  /** The active pin of a tool, if any. */
  get(server: string, tool: string): PinEntry | undefined {
    return this.pins.get(pinKey(server, tool));
  }

  /** Every active pin, in ledger order. */
  list(server?: string): PinEntry[] {
    const all = [...this.pins.values()].sort((a, b) => a.seq - b.seq);
    return server === undefined ? all : all.filter((pin) => pin.server === server);
  }

  /**
   * Pins tools (one lock for the batch). A tool whose active pin already has the same fingerprint
   * is skipped; returns the entries written.
   */
  async pin(
    tools: Array<{ server: string; tool: ListedTool }>,
    by: string,
    reason?: string,
  ): Promise<PinEntry[]> {
    return this.append((write) => {
      for (const { server, tool } of tools) {
        const fp = fingerprintTool(server, tool);
        const current = this.get(server, tool.name);
        if (current && fingerprintChanges(current, fp).length === 0) continue;
        write({
          action: "pin",
          server,
          tool: tool.name,
          schemaHash: fp.schemaHash,
          descriptionHash: fp.descriptionHash,
          annotationsHash: fp.annotationsHash,
          ...(tool.annotations !== undefined ? { annotations: tool.annotations } : {}),
          description: tool.description,
          title: tool.title,
          inputSchema: tool.inputSchema,
          by,
          reason,
        });
      }
    });
  }

  /** Revokes active pins; returns the entries written. */
  async revoke(
    targets: Array<{ server: string; tool: string }>,
    by: string,
    reason?: string,
  ): Promise<PinEntry[]> {
    return this.append((write) => {
      for (const { server, tool } of targets) {
        if (this.get(server, tool)) write({ action: "revoke", server, tool, by, reason });
      }
    });
  }

  private async append(
    build: (write: (body: Omit<PinEntry, "seq" | "prev" | "time" | "hash" | "hmac">) => void) => void,
  ): Promise<PinEntry[]> {
    await mkdir(dirname(this.path), { recursive: true });
    const release = await lock(this.path);
    try {
      await this.refresh();
      const written: PinEntry[] = [];
      const lines: string[] = [];
      let head = this.head;
      build((fields) => {
        const body = {
          seq: head.seq + 1,
          prev: head.hash,
          time: new Date(this.now()).toISOString(),
          ...fields,
        };
        // A JSON round trip drops undefined fields, so the hash is the one a reader computes.
        const clean = JSON.parse(canonicalJson(body)) as Omit<PinEntry, "hash" | "hmac">;
        const hash = sha256Hex(canonicalJson(clean));
        const entry = { ...clean, hash, hmac: this.key ? hmacHex(this.key, hash) : "" } as PinEntry;
        lines.push(JSON.stringify(entry));
        head = { seq: entry.seq, hash };
        written.push(entry);
      });
      if (!lines.length) return written;
      const handle = await open(this.path, "a+");
      try {
        const { size } = await handle.stat();
        // A torn line from a crashed writer would break every line after it.
        if (size > this.offset) await handle.truncate(this.offset);
        const data = `${lines.join("\n")}\n`;
        await handle.write(data, this.offset);
        await handle.datasync();
        this.offset += Buffer.byteLength(data, "utf8");
        for (const entry of written) this.accept(entry);
      } finally {
        await handle.close();
      }
      return written;
    } finally {
      await release();
    }
  }
}

function pinKey(server: string, tool: string): string {
  return `${server}\u0000${tool}`;
}

/**
 * A short-lived exclusive lock `<path>.lock` around one append: a lock from a dead process on this
 * host, or older than 30 s, is broken.
 */
async function lock(path: string): Promise<() => Promise<void>> {
  const file = `${path}.lock`;
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
    if (await createLock(file)) return () => removeLock(file);
    const { owner, stale } = await lockOwner(file, LOCK_STALE_MS);
    if (stale) {
      await removeLock(file);
      continue;
    }
    if (Date.now() > deadline)
      throw new PinLedgerError(
        `pin ledger \`${path}\` is locked by \`${owner || "unknown"}\` (file \`${file}\`)`,
      );
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}
