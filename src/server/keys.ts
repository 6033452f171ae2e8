import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { ToolwardenError } from "../core/index.js";
import { argsProblem } from "../core/limits.js";
import type { StateStore } from "../stores/types.js";

/** What a key may do: `agent` decides for its own agent id, `approver` decides approvals, `admin` everything. */
export type Role = "agent" | "approver" | "admin";

export const ROLES: readonly Role[] = ["agent", "approver", "admin"];

/** An API key as stored: only its hash, never the key. */
export interface ApiKeyRecord {
  id: string;
  /** Who holds the key; approvals are attributed to it. */
  name: string;
  role: Role;
  /** For `agent` keys: the one agent id the key may decide for. */
  agent?: string;
  /** For `agent` keys: attributes every call of this agent carries (`agent.role` and so on). */
  attrs?: Record<string, unknown>;
  /** Hex SHA-256 of the whole key. */
  hash: string;
  createdAt: string;
}

/** A key that authenticated, without its hash. */
export type ApiKeyIdentity = Omit<ApiKeyRecord, "hash">;

const PREFIX = "twk";
// Keys are 32 random bytes: a fast hash is enough, no password stretching needed.
const KEY_SHAPE = /^twk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;
const DUMMY_HASH = Buffer.alloc(32);
/** Verified keys remembered at most (the cache starts over past it). */
const MAX_VERIFIED = 10_000;

/**
 * API keys in a JSON file (mode 0600) holding only SHA-256 hashes. A key reads
 * `twk_<id>_<secret>`: the id finds the record, the hash of the whole key is compared in
 * constant time, and an unknown id costs the same comparison.
 */
export class ApiKeyStore {
  readonly #file: string | undefined;
  readonly #byId = new Map<string, ApiKeyRecord & { digest: Buffer }>();
  /**
   * Keys that verified, by the presented key: a hit skips the regex, the hash and the copy of the
   * identity on every request. Only verified keys enter (a wrong key cannot fill it), and any
   * change to the set (revoke, a shared set read anew) empties it, so a revocation holds at once.
   */
  readonly #verified = new Map<string, ApiKeyIdentity>();
  /** The state store the keys are shared through (every replica sees one set), once `share` ran. */
  #shared: { store: StateStore; version: number; loadedAt: number; forcedAt: number } | undefined;

  private constructor(file: string | undefined, records: ApiKeyRecord[]) {
    this.#file = file;
    for (const record of records)
      this.#byId.set(record.id, { ...record, digest: Buffer.from(record.hash, "hex") });
  }

  /** Opens the key file, or starts an empty one when it does not exist. `undefined`: in memory only. */
  static open(file: string | undefined): ApiKeyStore {
    if (!file) return new ApiKeyStore(undefined, []);
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return new ApiKeyStore(file, []);
      throw error;
    }
    let parsed: { keys?: ApiKeyRecord[] };
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new ToolwardenError(
        "keys_file",
        `api key file \`${file}\` is not JSON: ${(error as Error).message}`,
      );
    }
    return new ApiKeyStore(file, Array.isArray(parsed.keys) ? parsed.keys : []);
  }

  get size(): number {
    return this.#byId.size;
  }

  /** Creates a key; the returned `key` is shown once and never stored. Throws `ToolwardenError` (`key_attrs`) for attributes past the bounds. */
  create(options: { role: Role; name: string; agent?: string; attrs?: Record<string, unknown> }): {
    key: string;
    identity: ApiKeyIdentity;
  } {
    if (options.role === "agent" && !options.agent) {
      throw new ToolwardenError("key_agent", "an `agent` key needs the agent id it is bound to");
    }
    const problem = options.attrs === undefined ? undefined : attrsProblem(options.attrs);
    if (problem) throw new ToolwardenError("key_attrs", `\`attrs\` ${problem}`);
    const id = randomBytes(6).toString("hex");
    const key = `${PREFIX}_${id}_${randomBytes(32).toString("base64url")}`;
    const hash = sha256(key);
    const record: ApiKeyRecord = {
      id,
      name: options.name,
      role: options.role,
      ...(options.role === "agent"
        ? { agent: options.agent, ...(options.attrs ? { attrs: options.attrs } : {}) }
        : {}),
      hash: hash.toString("hex"),
      createdAt: new Date().toISOString(),
    };
    // Written first: a key that cannot be saved is never in use.
    this.#save([...this.#records(), record]);
    this.#byId.set(id, { ...record, digest: hash });
    return { key, identity: identityOf(record) };
  }

  /** The identity behind a presented key, or undefined. Constant time in the key's secret part. */
  verify(presented: string): ApiKeyIdentity | undefined {
    const known = this.#verified.get(presented);
    if (known) return known;
    const match = KEY_SHAPE.exec(presented);
    const record = match ? this.#byId.get(match[1]) : undefined;
    const ok = timingSafeEqual(sha256(presented), record?.digest ?? DUMMY_HASH);
    if (!ok || !record) return undefined;
    const identity = Object.freeze(identityOf(record));
    if (this.#verified.size >= MAX_VERIFIED) this.#verified.clear();
    this.#verified.set(presented, identity);
    return identity;
  }

  list(): ApiKeyIdentity[] {
    return [...this.#byId.values()].map(identityOf);
  }

  /** Revokes a key by id; false when there was none. */
  revoke(id: string): boolean {
    const removed = this.#byId.delete(id);
    this.#verified.clear();
    if (removed) this.#save();
    return removed;
  }

  /**
   * Shares the keys through the state store: the store's set and this file's are merged (a new
   * replica's admin key joins the set), and from then on `createKey` and `revokeKey` write the
   * store by compare-and-set and `refresh` reads it, so a key made or revoked on one replica
   * holds on every other within `refresh`'s age. The file keeps a copy.
   */
  async share(store: StateStore): Promise<void> {
    this.#shared = { store, version: 0, loadedAt: 0, forcedAt: 0 };
    const mine = this.#records();
    try {
      await this.#update((records, revoked) => {
        // A key revoked elsewhere while this replica was away stays revoked.
        const ids = new Set(records.map((record) => record.id));
        const missing = mine.filter((record) => !ids.has(record.id) && !revoked.includes(record.id));
        return missing.length ? { keys: [...records, ...missing], revoked } : undefined;
      });
    } catch (error) {
      this.#shared = undefined;
      throw error;
    }
  }

  /** Reads the shared set again if the copy here is older than `maxAgeMs`. Keeps the copy if the store fails. */
  async refresh(maxAgeMs = 1000): Promise<void> {
    const shared = this.#shared;
    if (!shared || Date.now() - shared.loadedAt < maxAgeMs) return;
    try {
      const record = await shared.store.getRecord(KEYS_RECORD, Date.now());
      if (record && record.version !== shared.version)
        this.#adopt(parseKeys(record.value).keys, record.version);
      shared.loadedAt = Date.now();
    } catch {
      // The store is down: authenticate with the last set read (a revocation elsewhere waits).
    }
  }

  /** `verify`, reading the shared set first when a key is unknown here (at most every 100 ms). */
  async verifyFresh(presented: string): Promise<ApiKeyIdentity | undefined> {
    await this.refresh();
    const identity = this.verify(presented);
    const shared = this.#shared;
    if (identity || !shared || Date.now() - shared.forcedAt < 100) return identity;
    shared.forcedAt = Date.now();
    await this.refresh(0);
    return this.verify(presented);
  }

  /** `create`, in the shared set when there is one. */
  async createKey(options: Parameters<ApiKeyStore["create"]>[0]): Promise<ReturnType<ApiKeyStore["create"]>> {
    const created = this.create(options);
    if (this.#shared) {
      const record = this.#records().find((r) => r.id === created.identity.id)!;
      await this.#update((records, revoked) => ({ keys: [...records, record], revoked }));
    }
    return created;
  }

  /** `revoke`, in the shared set when there is one. */
  async revokeKey(id: string): Promise<boolean> {
    if (!this.#shared) return this.revoke(id);
    let found = false;
    await this.#update((records, revoked) => {
      found = records.some((record) => record.id === id);
      return found
        ? { keys: records.filter((record) => record.id !== id), revoked: [...revoked, id].slice(-10_000) }
        : undefined;
    });
    this.#byId.delete(id);
    this.#verified.clear();
    return found;
  }

  /** Compare-and-set of the shared set: `change` gives the new list, or undefined for no change. */
  async #update(
    change: (records: ApiKeyRecord[], revoked: string[]) => SharedKeys | undefined,
  ): Promise<void> {
    const shared = this.#shared!;
    for (let attempt = 0; attempt < 16; attempt++) {
      const record = await shared.store.getRecord(KEYS_RECORD, Date.now());
      const current = record ? parseKeys(record.value) : { keys: [], revoked: [] };
      const next = change(current.keys, current.revoked);
      if (!next) {
        this.#adopt(current.keys, record?.version ?? 0);
        return;
      }
      const version = record?.version ?? 0;
      if (await shared.store.putRecord(KEYS_RECORD, JSON.stringify(next), version, null, Date.now())) {
        this.#adopt(next.keys, version + 1);
        return;
      }
    }
    throw new ToolwardenError("keys_busy", "the shared api keys changed concurrently too often; try again");
  }

  #adopt(records: ApiKeyRecord[], version: number): void {
    this.#byId.clear();
    this.#verified.clear();
    for (const record of records)
      this.#byId.set(record.id, { ...record, digest: Buffer.from(record.hash, "hex") });
    this.#shared!.version = version;
    this.#shared!.loadedAt = Date.now();
    this.#save();
  }

  #records(): ApiKeyRecord[] {
    return [...this.#byId.values()].map(({ digest: _digest, ...record }) => record);
  }

  #save(keys: ApiKeyRecord[] = this.#records()): void {
    if (!this.#file) return;
    const tmp = `${this.#file}.tmp`;
    writeFileSync(tmp, `${JSON.stringify({ keys }, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, this.#file);
  }
}

const KEYS_RECORD = "api-keys";

/** The shared set: the keys, and the ids revoked (so a replica that was away cannot bring one back). */
interface SharedKeys {
  keys: ApiKeyRecord[];
  revoked: string[];
}

function parseKeys(text: string): SharedKeys {
  const parsed = JSON.parse(text) as Partial<SharedKeys>;
  return {
    keys: Array.isArray(parsed.keys) ? parsed.keys : [],
    revoked: Array.isArray(parsed.revoked) ? parsed.revoked : [],
  };
}

/** Bounds on an agent key's attributes: what rules read as `agent.<attr>`, kept small and flat. */
export const ATTR_LIMITS = { depth: 8, jsonChars: 16 * 1024 } as const;

/** Why `attrs` cannot be a key's attributes (not plain JSON data, too deep, too large), or undefined. */
export function attrsProblem(attrs: unknown): string | undefined {
  if (attrs === null || typeof attrs !== "object" || Array.isArray(attrs)) return "must be an object";
  const problem = argsProblem(attrs);
  if (problem) return problem.replace(/^arguments?/, "attributes");
  // Depth first with an explicit stack, so the size is measured only on a shallow value.
  const stack: Array<[unknown, number]> = [[attrs, 0]];
  while (stack.length) {
    const [value, depth] = stack.pop()!;
    if (value === null || typeof value !== "object") continue;
    if (depth >= ATTR_LIMITS.depth) return `are nested deeper than ${ATTR_LIMITS.depth} levels`;
    for (const item of Object.values(value)) stack.push([item, depth + 1]);
  }
  if (JSON.stringify(attrs).length > ATTR_LIMITS.jsonChars)
    return `are larger than ${ATTR_LIMITS.jsonChars} characters of JSON`;
  return undefined;
}

function identityOf(record: ApiKeyRecord): ApiKeyIdentity {
  const { hash: _hash, digest: _digest, ...identity } = record as ApiKeyRecord & { digest?: Buffer };
  return identity;
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}
