import { readFileSync } from "node:fs";
import { join } from "node:path";
import { defaultExtends } from "../policy/load.js";

/** A stored policy version as the manifest lists it (what `extends` in an upload may name). */
export interface StoredVersionRef {
  hash: string;
  name: string;
  origin: "file" | "upload";
}

/**
 * What `extends` may name in a policy that came over HTTP: only policies stored on the server,
 * by hash (or a unique prefix of at least 8 hex digits) or by name (the newest version with it),
 * never a path. A stored version of the server's own file is read as that file, so what it
 * extends (files the operator chose) resolves as it did when it was stored.
 */
export function uploadExtends(options: {
  /** The label the upload is loaded under. */
  upload: string;
  /** The server's policy file. */
  file: string;
  /** Where version texts are (`<hash>.yaml`). */
  dir: string;
  versions: readonly StoredVersionRef[];
}): (ref: string, from: string) => { file: string; text: string } {
  // Only the server's own file, and files reached from it, read paths; anything else (the upload,
  // a stored upload, a label this code does not know) names stored policies only. Decided by
  // what is trusted rather than by what the upload is called, so a renamed label fails closed.
  const trusted = new Set([options.file]);
  return (ref, from) => {
    if (trusted.has(from)) {
      const resolved = defaultExtends(ref, from);
      trusted.add(resolved.file);
      return resolved;
    }
    let version: StoredVersionRef | undefined;
    if (/^[0-9a-f]{8,64}$/.test(ref)) {
      const matches = options.versions.filter((v) => v.hash.startsWith(ref));
      if (matches.length > 1)
        throw new Error(
          `\`extends\`: \`${ref}\` is the start of ${matches.length} stored policies; give more of the hash`,
        );
      version = matches[0];
    }
    version ??= options.versions.findLast((v) => v.name === ref);
    if (!version || !/^[0-9a-f]{64}$/.test(version.hash)) {
      throw new Error(
        `\`extends\` in an uploaded policy names stored policies only (by hash or name): no stored policy \`${ref}\`${/[/\\.]/.test(ref) ? " (paths are not read)" : ""}`,
      );
    }
    const text = readFileSync(join(options.dir, `${version.hash}.yaml`), "utf8");
    return version.origin === "file"
      ? { file: options.file, text }
      : { file: `policy:${version.hash}`, text };
  };
}
