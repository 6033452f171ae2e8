import { realpath } from "node:fs/promises";
import { posix } from "node:path";
import picomatch from "picomatch";
import { z } from "zod";
import type { Finding } from "../../core/index.js";
import type { ArgCheck, AsyncArgCheck, ConstraintKind } from "../kind.js";
import { preview } from "../kind.js";
import { resolveOnDisk } from "./on-disk.js";
import { pathReadings } from "./readings.js";

const pathOptions = z
  .object({
    /** Absolute POSIX roots the path must stay under (after `..`, decoding and folding). */
    within: z.array(z.string().min(1)).min(1).optional(),
    /** Globs of refused paths (case-insensitive); see {@link compileDenyGlobs}. */
    deny: z.array(z.string().min(1)).optional(),
    /** Also follow symlinks on disk and re-check; runs in `enforce`. */
    realpath: z.boolean().optional(),
    /** Relative paths resolve against the first root (default true); false refuses them. */
    allow_relative: z.boolean().optional(),
  })
  .strict();

/** Options of the `path` constraint kind. */
export type PathOptions = z.infer<typeof pathOptions>;

const MAX_PATH_LENGTH = 16_384;

interface CompiledPath {
  roots: readonly string[];
  base: string;
  allowRelative: boolean;
  deny: RegExp | null;
}

/**
 * `path: { within, deny, realpath, allow_relative }`: the argument is a file path inside the
 * roots and outside the denied globs, however a tool reads it: literally, percent-decoded
 * (repeatedly), NFKC-folded, with `\` as a separator. NUL bytes are `path.nul`; overlong or
 * invalid UTF-8 and `%u` escapes are `path.encoding`; `~`, `$VAR`, Windows drives, UNC paths
 * and URIs are `path.unparsable`. `/workspace-evil` is not under `/workspace`.
 */
export const pathKind: ConstraintKind<PathOptions> = {
  kind: "path",
  summary: "a file path that stays within the given roots and outside the denied globs",
  options: pathOptions,
  compile(options) {
    const compiled = compilePath(options);
    const check: ArgCheck = (value, arg, out) => {
      const paths = read(value, arg, out, compiled);
      if (paths === null) return;
      for (const path of paths) {
        if (!checkPath(path, value as string, "read as", arg, out, compiled.roots, compiled.deny)) return;
      }
    };
    return check;
  },
  compileAsync(options) {
    if (!options.realpath) return undefined;
    const compiled = compilePath(options);
    let realRoots: readonly string[] | undefined;
    const check: AsyncArgCheck = async (value, arg, out) => {
      // Readings the synchronous half refuses need no disk access.
      const paths = read(value, arg, [], compiled);
      if (paths === null) return;
      let roots = realRoots;
      if (roots === undefined) {
        const resolved = await realpathRoots(compiled.roots);
        roots = resolved.roots;
        // Keep them once every root exists; a missing root may still appear (or be a symlink).
        if (resolved.complete) realRoots = roots;
      }
      for (const path of paths) {
        let real: string;
        try {
          real = await resolveOnDisk(path);
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code ?? "error";
          out.push({
            code: "path.unparsable",
            arg,
            message: `\`${preview(path)}\` cannot be resolved on disk (${code})`,
          });
          return;
        }
        if (real !== path && !checkPath(real, path, "through symlinks", arg, out, roots, compiled.deny))
          return;
      }
    };
    return check;
  },
};

function compilePath(options: PathOptions): CompiledPath {
  const roots = (options.within ?? []).map((root) => {
    if (!root.startsWith("/") || root.includes("\0")) {
      throw new Error(`within: \`${root}\` is not an absolute POSIX path`);
    }
    const normal = posix.normalize(root);
    return normal.length > 1 && normal.endsWith("/") ? normal.slice(0, -1) : normal;
  });
  return {
    roots,
    base: roots[0] ?? "/",
    allowRelative: options.allow_relative ?? true,
    deny: options.deny ? compileDenyGlobs(options.deny, roots) : null,
  };
}

/**
 * Compiles `deny` globs (picomatch syntax, dot files included, case-insensitive because macOS
 * and Windows file systems are) into one regular expression over absolute paths, gitignore
 * style: a pattern without `/` (`.env`, `*.pem`) matches a name at any depth; one starting with
 * `/` or `**` matches from the root of the file system; any other (`secrets/*.key`) is relative
 * to each root in `within` (or `/`). A match on a directory also denies everything below it.
 */
export function compileDenyGlobs(patterns: readonly string[], roots: readonly string[]): RegExp {
  const globs: string[] = [];
  for (const pattern of patterns) {
    const bases = !pattern.includes("/")
      ? ["**/"]
      : pattern.startsWith("/") || pattern.startsWith("**")
        ? [""]
        : (roots.length > 0 ? roots : ["/"]).map((root) => (root === "/" ? "/" : `${root}/`));
    for (const base of bases) globs.push(`${base}${pattern}`, `${base}${pattern.replace(/\/$/, "")}/**`);
  }
  const sources = globs.map((glob) => {
    try {
      return picomatch.makeRe(glob, { dot: true, nocase: true }).source;
    } catch (error) {
      throw new Error(`deny: \`${glob}\` is not a valid glob: ${(error as Error).message}`);
    }
  });
  return new RegExp(sources.map((source) => `(?:${source})`).join("|"), "i");
}

/** Pushes a finding when `path` escapes the roots or is denied; false when it did. */
function checkPath(
  path: string,
  original: string,
  how: string,
  arg: string,
  out: Finding[],
  roots: readonly string[],
  deny: RegExp | null,
): boolean {
  const shownPath = shown(original);
  const through = path === original ? "" : ` (${how} \`${shown(path)}\`)`;
  if (roots.length > 0 && !roots.some((root) => isWithin(path, root))) {
    const message = `\`${shownPath}\`${through} is outside ${roots.join(", ")}`;
    out.push({ code: "path.outside", arg, message });
    return false;
  }
  if (deny?.test(path)) {
    out.push({ code: "path.denied", arg, message: `\`${shownPath}\`${through} matches a denied pattern` });
    return false;
  }
  return true;
}

/** `/workspace/x` is within `/workspace`; `/workspace-evil` is not. */
function isWithin(path: string, root: string): boolean {
  if (root === "/") return true;
  return path.startsWith(root) && (path.length === root.length || path.charCodeAt(root.length) === 47);
}

function read(value: unknown, arg: string, out: Finding[], compiled: CompiledPath): string[] | null {
  if (typeof value !== "string") {
    out.push({ code: "path.unparsable", arg, message: `expected a path string, got \`${preview(value)}\`` });
    return null;
  }
  if (value.length > MAX_PATH_LENGTH) {
    out.push({ code: "path.unparsable", arg, message: `path is longer than ${MAX_PATH_LENGTH} characters` });
    return null;
  }
  const readings = pathReadings(value, compiled.base, compiled.allowRelative);
  if (Array.isArray(readings)) return readings;
  out.push({ code: readings.code, arg, message: `\`${shown(value)}\`: ${readings.message}` });
  return null;
}

/** A preview with controls, NUL and bidi overrides made visible. */
function shown(value: string): string {
  return preview(value).replace(
    /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069]/g,
    (ch) => `\\u{${ch.charCodeAt(0).toString(16)}}`,
  );
}

async function realpathRoots(roots: readonly string[]): Promise<{ roots: string[]; complete: boolean }> {
  let complete = true;
  const resolved = await Promise.all(
    roots.map((root) =>
      realpath(root).catch(() => {
        complete = false;
        return resolveOnDisk(root).catch(() => root);
      }),
    ),
  );
  return { roots: resolved, complete };
}
