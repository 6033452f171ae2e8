import type { LoadedPolicy, Origin } from "./load.js";
import type { RawPolicy } from "./schema.js";
import { type PathSegment, type PolicySource, parseSource } from "./source.js";

/**
 * A loaded policy as plain data, to pass between threads: the expensive part of loading (parsing
 * with positions, validating) runs in a worker, and the compiler on the main thread gets the
 * result back. Sources travel as text; their parsed documents are rebuilt only if an error or a
 * warning needs a position.
 */
export interface LoadedTransfer {
  policy: RawPolicy;
  sources: Array<{ file: string; text: string }>;
  root: number;
  origins: {
    rules: TransferOrigin[];
    limits: TransferOrigin[];
    tests: TransferOrigin[];
    tools: Array<[string, TransferOrigin]>;
    shorthand: Array<[string, TransferOrigin[]]>;
    detect: Array<[string, TransferOrigin]>;
  };
  hash: string;
}

type TransferOrigin = [source: number, path: PathSegment[]];

export function toTransfer(loaded: LoadedPolicy): LoadedTransfer {
  const index = new Map(loaded.sources.map((source, i) => [source, i]));
  const at = (origin: Origin): TransferOrigin => [index.get(origin.source) ?? 0, origin.path];
  return {
    policy: loaded.policy,
    sources: loaded.sources.map(({ file, text }) => ({ file, text })),
    root: index.get(loaded.source) ?? 0,
    origins: {
      rules: loaded.origins.rules.map(at),
      limits: loaded.origins.limits.map(at),
      tests: loaded.origins.tests.map(at),
      tools: [...loaded.origins.tools].map(([k, o]) => [k, at(o)]),
      shorthand: [...loaded.origins.shorthand].map(([k, os]) => [k, os.map(at)]),
      detect: [...loaded.origins.detect].map(([k, o]) => [k, at(o)]),
    },
    hash: loaded.hash,
  };
}

export function fromTransfer(transfer: LoadedTransfer): LoadedPolicy {
  const sources = transfer.sources.map(({ file, text }) => lazySource(file, text));
  const origin = ([i, path]: TransferOrigin): Origin => ({ source: sources[i]!, path });
  return {
    policy: transfer.policy,
    source: sources[transfer.root]!,
    sources,
    origins: {
      rules: transfer.origins.rules.map(origin),
      limits: transfer.origins.limits.map(origin),
      tests: transfer.origins.tests.map(origin),
      tools: new Map(transfer.origins.tools.map(([k, o]) => [k, origin(o)])),
      shorthand: new Map(transfer.origins.shorthand.map(([k, os]) => [k, os.map(origin)])),
      detect: new Map(transfer.origins.detect.map(([k, o]) => [k, origin(o)])),
    },
    hash: transfer.hash,
  };
}

/** A source whose document and line table are parsed on first use. */
function lazySource(file: string, text: string): PolicySource {
  let parsed: PolicySource | undefined;
  const get = () => {
    parsed ??= parseSource(file, text).source;
    return parsed;
  };
  return {
    file,
    text,
    get doc() {
      return get().doc;
    },
    get lines() {
      return get().lines;
    },
  };
}
