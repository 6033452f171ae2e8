import { RE2JS } from "re2js";

/** A compiled name glob: `*` any run of characters, `?` one, `[abc]`/`[a-z]` a class. */
export type GlobMatcher = (text: string) => boolean;

/** Why a glob is unusable, or undefined when it is fine. */
export function globError(glob: string): string | undefined {
  if (glob.length === 0) return "empty glob";
  let inClass = false;
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i];
    if (ch === "\\") i++;
    else if (ch === "[" && !inClass) {
      inClass = true;
      if (glob[i + 1] === "]") return `empty character class in \`${glob}\``;
    } else if (ch === "]" && inClass) inClass = false;
  }
  return inClass ? `unterminated \`[\` in \`${glob}\`` : undefined;
}

/**
 * Compiles a glob once. Plain names and `prefix*` take string fast paths; anything else runs
 * on RE2, so matching stays linear in the input however the glob is written.
 */
export function compileGlob(glob: string): GlobMatcher {
  const error = globError(glob);
  if (error) throw new Error(error);
  if (!/[*?[\\]/.test(glob)) return (text) => text === glob;
  const star = glob.indexOf("*");
  if (star === glob.length - 1 && !/[?[\\]/.test(glob)) {
    const prefix = glob.slice(0, -1);
    return (text) => text.startsWith(prefix);
  }
  const re = RE2JS.compile(globToRegex(glob), RE2JS.DOTALL);
  return (text) => re.matches(text);
}

/** One matcher for a list of globs (any matches). */
export function compileGlobs(globs: readonly string[]): GlobMatcher {
  const matchers = globs.map(compileGlob);
  if (matchers.length === 1) return matchers[0];
  return (text) => {
    for (const match of matchers) if (match(text)) return true;
    return false;
  };
}

function globToRegex(glob: string): string {
  let out = "";
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i];
    if (ch === "*") out += ".*";
    else if (ch === "?") out += ".";
    else if (ch === "\\") out += escapeRegex(glob[++i] ?? "\\");
    else if (ch === "[") {
      const end = glob.indexOf("]", i + 2);
      let body = glob.slice(i + 1, end);
      if (body.startsWith("!")) body = `^${body.slice(1)}`;
      out += `[${body.replace(/\\/g, "\\\\")}]`;
      i = end;
    } else out += escapeRegex(ch);
  }
  return out;
}

function escapeRegex(ch: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(ch) ? `\\${ch}` : ch;
}
