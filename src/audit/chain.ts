import { createHmac, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { AuditKeyError } from "./errors.js";
import type { AuditEvent, AuditRecord } from "./types.js";

/** `prev` of the first record of a chain. */
export const ZERO_HASH = "0".repeat(64);

/** Shortest audit key accepted, in bytes: HMAC with a shorter key is guessable. */
export const MIN_KEY_BYTES = 16;

export { canonicalJson, hashValue, sha256Hex } from "../core/canonical.js";

import { canonicalJson, sha256Hex } from "../core/canonical.js";

/** The hash a record must carry: SHA-256 over its canonical JSON without `hash` and `hmac`. */
export function recordHash(record: object): string {
  const { hash: _hash, hmac: _hmac, ...body } = record as Record<string, unknown>;
  return sha256Hex(canonicalJson(body));
}

/** Hex HMAC-SHA256 of a record hash. */
export function hmacHex(key: Buffer, hash: string): string {
  return createHmac("sha256", key).update(hash, "utf8").digest("hex");
}

/** Compares two hex digests in constant time. */
export function digestEquals(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  return timingSafeEqual(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** Where a chain stands: the last record's `seq` (0 before the first) and `hash`. */
export interface ChainHead {
  seq: number;
  hash: string;
}

export const GENESIS: ChainHead = Object.freeze({ seq: 0, hash: ZERO_HASH });

/** A record and the exact JSON text it is stored as. */
export interface SealedRecord {
  record: AuditRecord;
  /** Canonical JSON of the record's body with `hash` and `hmac` appended; no newline. */
  line: string;
}

/**
 * Turns an event into the next record of a chain, signed on its own (a checkpoint): its `hmac` is
 * the HMAC of its hash. `key` undefined means an unsigned sink: `hmac` is the empty string.
 * `chain` names the chain inside a shared database table. Sinks seal whole batches with `sealBatch`.
 */
export function sealRecord(
  event: AuditEvent,
  head: ChainHead,
  key: Buffer | undefined,
  chain?: string,
): SealedRecord {
  return seal(event, head, chain, (hash) => (key ? hmacHex(key, hash) : ""));
}

/**
 * Seals a batch that is written at once (one write and fsync, or one transaction): every record
 * chained, only the last one signed. That last record is the batch's checkpoint: its HMAC covers its
 * hash, which covers `prev`, so it authenticates every record before it. The others carry
 * `hmac: "@<seq of the checkpoint>"`, which says where their signature is (unsigned sinks: "").
 * Per record this costs one canonical JSON and one SHA-256; per batch, one HMAC.
 */
export function sealBatch(
  events: readonly AuditEvent[],
  head: ChainHead,
  key: Buffer | undefined,
  chain?: string,
): SealedRecord[] {
  const last = events.length - 1;
  const ref = key ? checkpointRef(head.seq + events.length) : "";
  const sealed: SealedRecord[] = new Array(events.length);
  for (let i = 0; i < events.length; i++) {
    const record =
      i === last ? sealRecord(events[i]!, head, key, chain) : seal(events[i]!, head, chain, () => ref);
    sealed[i] = record;
    head = { seq: record.record.seq, hash: record.record.hash };
  }
  return sealed;
}

function seal(
  event: AuditEvent,
  head: ChainHead,
  chain: string | undefined,
  sign: (hash: string) => string,
): SealedRecord {
  // Chain fields an untyped caller put on the event must not shadow the real ones.
  const source = hasChainFields(event) ? stripChainFields(event) : event;
  const body = (
    chain === undefined
      ? { ...source, seq: head.seq + 1, prev: head.hash }
      : { ...source, chain, seq: head.seq + 1, prev: head.hash }
  ) as AuditRecord;
  const canonical = canonicalJson(body);
  const hash = sha256Hex(canonical);
  const hmac = sign(hash);
  // The stored line need not be canonical (readers re-canonicalise); appending keeps one pass.
  const line = `${canonical.slice(0, -1)},"hash":"${hash}","hmac":"${hmac}"}`;
  body.hash = hash;
  body.hmac = hmac;
  return { record: body, line };
}

/** The `hmac` of a record that the checkpoint at `seq` signs. */
export function checkpointRef(seq: number): string {
  return `@${seq}`;
}

/**
 * What a record's `hmac` is: `checkpoint` (an HMAC to check), `covered` (`@M`: the checkpoint at
 * seq `by` signs it) or `unsigned` (empty). Only a checkpoint's HMAC is evidence; `@M` is a hint.
 */
export function hmacRole(
  hmac: string,
): { role: "checkpoint" } | { role: "covered"; by: number } | { role: "unsigned" } {
  if (hmac === "") return { role: "unsigned" };
  if (hmac.charCodeAt(0) === 64 /* @ */ && /^@[1-9][0-9]*$/.test(hmac))
    return { role: "covered", by: Number(hmac.slice(1)) };
  return { role: "checkpoint" };
}

function hasChainFields(event: object): boolean {
  return "seq" in event || "prev" in event || "hash" in event || "hmac" in event || "chain" in event;
}

function stripChainFields(event: AuditEvent): AuditEvent {
  const { seq: _s, prev: _p, hash: _h, hmac: _m, chain: _c, ...rest } = event as Partial<AuditRecord>;
  return rest as AuditEvent;
}

/** Every way the CLI and the gateway take the audit key, for every message that asks for it. */
export const AUDIT_KEY_WAYS =
  "pass `--audit-key-file FILE`, set `TOOLWARDEN_AUDIT_KEY` (the key, 16+ bytes) or `TOOLWARDEN_AUDIT_KEY_FILE` (a file holding it), or give `audit_key_file:` in gateway.yaml";

export interface AuditKeyOptions {
  /** The key itself (from the host's configuration, never from a policy). Strings are used as UTF-8 bytes. */
  key?: string | Buffer;
  /** A file holding the key; surrounding whitespace is ignored. */
  keyFile?: string;
  /** Environment to read `TOOLWARDEN_AUDIT_KEY` and `TOOLWARDEN_AUDIT_KEY_FILE` from; default `process.env`. */
  env?: Record<string, string | undefined>;
}

/**
 * Finds the audit HMAC key: `options.key`, then `options.keyFile`, then the `TOOLWARDEN_AUDIT_KEY`
 * environment variable, then the file named by `TOOLWARDEN_AUDIT_KEY_FILE`. Returns undefined
 * when none is set; throws `AuditKeyError` when one is set but unreadable or shorter than 16 bytes.
 */
export function resolveAuditKey(options: AuditKeyOptions = {}): Buffer | undefined {
  const env = options.env ?? process.env;
  if (options.key !== undefined) return checkKey(toKey(options.key), "the configured audit key");
  if (options.keyFile !== undefined) return readKeyFile(options.keyFile);
  const fromEnv = env.TOOLWARDEN_AUDIT_KEY;
  if (fromEnv) return checkKey(toKey(fromEnv), "TOOLWARDEN_AUDIT_KEY");
  const file = env.TOOLWARDEN_AUDIT_KEY_FILE;
  if (file) return readKeyFile(file);
  return undefined;
}

function toKey(key: string | Buffer): Buffer {
  return typeof key === "string" ? Buffer.from(key, "utf8") : key;
}

function readKeyFile(file: string): Buffer {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new AuditKeyError(`cannot read audit key file \`${file}\`: ${(error as Error).message}`);
  }
  return checkKey(Buffer.from(text.trim(), "utf8"), `audit key file \`${file}\``);
}

function checkKey(key: Buffer, source: string): Buffer {
  if (key.length < MIN_KEY_BYTES) {
    throw new AuditKeyError(`${source} is ${key.length} bytes; an audit key needs at least ${MIN_KEY_BYTES}`);
  }
  return key;
}

/** What every sink accepts about signing. */
export interface SigningOptions extends AuditKeyOptions {
  /** Write records with an empty `hmac` when no key is found, instead of refusing to start. For development only. */
  unsigned?: boolean;
}

/**
 * The key a signing sink uses: resolved as `resolveAuditKey` does. Throws `AuditKeyError` when
 * there is none, unless `unsigned: true` (then undefined, and records are hash-chained only).
 */
export function signingKey(options: SigningOptions): Buffer | undefined {
  const key = resolveAuditKey(options);
  if (key || options.unsigned) return key;
  throw new AuditKeyError(
    "no audit key: set `TOOLWARDEN_AUDIT_KEY` or `TOOLWARDEN_AUDIT_KEY_FILE`, or pass `key`/`keyFile` to the sink (or `unsigned: true` for development)",
    { cliHelp: `no audit key: ${AUDIT_KEY_WAYS}` },
  );
}
