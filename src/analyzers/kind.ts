import type { z } from "zod";
import type { Finding } from "../core/index.js";

/**
 * Checks one argument value and pushes a finding per violation. It must not throw for any
 * input: hostile values are findings, and a throw is treated as an internal error (fail policy).
 * Push nothing and allocate nothing when the value is fine: this runs on the hot path.
 */
export type ArgCheck = (value: unknown, arg: string, out: Finding[]) => void;

/** A check that needs I/O (DNS, the file system); run by `enforce`, never by `evaluate`. */
export type AsyncArgCheck = (value: unknown, arg: string, out: Finding[]) => Promise<void>;

/**
 * A constraint kind: the key under `tools.<tool>.args.<arg>`, e.g. `url: { private: block }`.
 * Adding an analyzer is one module exporting one of these, listed in `./index.ts`.
 */
export interface ConstraintKind<Options = any> {
  readonly kind: string;
  /** One line for `explain` and the docs. */
  readonly summary: string;
  /** Options schema; checked at load, so errors carry file:line:col. */
  readonly options: z.ZodType<Options>;
  /** Compiles once at load. Throw an Error whose message says what is wrong with the options. */
  compile(options: Options): ArgCheck;
  /**
   * Loads what the compiled check needs and can only get asynchronously (a WASM parser).
   * `compile` must still work without it; an async policy compile awaits this first.
   */
  load?(options: Options): Promise<void>;
  /** Optional I/O half of the check (for example `url.resolve: true`). */
  compileAsync?(options: Options): AsyncArgCheck | undefined;
}

/**
 * A detector scans every string leaf of every argument, e.g. `detect: { secrets: deny }`, and,
 * where the policy says so, tool outputs (`detect: { secrets: { outputs: mask } }`).
 */
export interface Detector {
  readonly name: string;
  readonly summary: string;
  /** Push a finding per hit; nothing (and no allocation) when the text is clean. */
  scan(text: string, arg: string, out: Finding[]): void;
  /**
   * Scans a whole structured value (arguments, an output) when the detector reads more than
   * string leaves (object keys, adjacent array elements); `scan` on each string leaf otherwise.
   */
  scanValue?(value: unknown, path: string, out: Finding[]): void;
  /** The text with each hit replaced (`outputs: mask`); without it, `mask` withholds the whole text. */
  mask?(text: string): { text: string; findings: Finding[] };
  /** Options beside `args` and `outputs` under `detect.<name>`; checked at load. */
  readonly options?: z.ZodType;
  /** The detector with its options applied (compiled once at load). */
  configure?(options: any): Detector;
}

/** Describes a value for a finding message without echoing huge or secret input. */
export function preview(value: unknown, max = 60): string {
  const text = typeof value === "string" ? value : JSON.stringify(value) ?? String(value);
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
