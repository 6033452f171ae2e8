import { lstat, readlink, realpath } from "node:fs/promises";
import { posix } from "node:path";

/** Symlink hops before giving up, as Linux does (ELOOP after 40). */
const MAX_HOPS = 40;

/**
 * The real path of `path` on disk, following every symlink, for paths that may not exist yet:
 * the deepest existing ancestor is resolved with `realpath` and the missing rest appended. A
 * dangling symlink is followed to where it points, because writing through it creates the file
 * there. Throws (with an errno `code`) for loops and for errors other than "does not exist".
 */
export async function resolveOnDisk(path: string, hops = 0): Promise<string> {
  if (hops > MAX_HOPS) throw Object.assign(new Error(`too many symlinks at ${path}`), { code: "ELOOP" });
  try {
    return await realpath(path);
  } catch (error) {
    if (!isMissing(error)) throw error;
  }
  try {
    if ((await lstat(path)).isSymbolicLink()) {
      const target = await readlink(path);
      return resolveOnDisk(posix.resolve(posix.dirname(path), target), hops + 1);
    }
  } catch (error) {
    if (!isMissing(error)) throw error;
  }
  const parent = posix.dirname(path);
  if (parent === path) return path;
  return posix.join(await resolveOnDisk(parent, hops), posix.basename(path));
}

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "ENOTDIR";
}
