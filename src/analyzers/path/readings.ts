import { posix } from "node:path";

/** Why a path argument cannot be read at all; the analyzer turns it into a finding. */
export interface PathProblem {
  code: "path.nul" | "path.encoding" | "path.unparsable" | "path.outside";
  message: string;
}

/** Printable ASCII that needs no decoding, folding or expansion (no `% \ : ~ $` or backtick). */
const PLAIN = /^[\w./ +,=@#-]+$/;
const NUL = /\u0000/;
const CONTROL = /[\u0001-\u001f\u007f-\u009f]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const PERCENT = /%[0-9A-Fa-f]{2}/;
const PERCENT_RUNS = /(?:%[0-9A-Fa-f]{2})+/g;
const IIS_UNICODE = /%u[0-9A-Fa-f]{4}/;
/** `\` and slashes that some file APIs or best-fit code pages turn into `/`. */
const OTHER_SEPARATORS = /[\\\u2215\u2044\u29f8]/g;
const DRIVE = /^[A-Za-z]:/;
const UNC = /^(?:\\[\\/]|\/\\)/;
/** `scheme://`, `file:`, and wrapped URIs such as Java's `url:file:` or `jar:file:`. */
const URI = /^(?:[A-Za-z][A-Za-z0-9+.-]*:(?:\/\/|[A-Za-z][A-Za-z0-9+.-]*:)|file:)/i;
const SHELL_EXPANSION = /\$[A-Za-z_{(]|`/;
/** Bound on decode/fold layers: `%25252e` needs three; a hundred is an attack. */
const MAX_FORMS = 16;

/**
 * Every absolute, normalised path a tool might take `value` to mean, or the problem that keeps
 * it from being read. The literal string is one reading; percent-decoded layers (repeated,
 * bounded), their NFKC folds (fullwidth `．．／` is `../`), and each of those with `\` (and
 * look-alike slashes) as a separator are others. `.`/`..` resolve with POSIX semantics;
 * relative paths resolve against `base`. All readings must pass for the path to pass.
 *
 * `~` and `$VAR` are never expanded: a path using them is `path.unparsable`, because the tool
 * (or a shell behind it) might expand them to somewhere else. Windows drives, UNC paths and
 * URIs are `path.unparsable` too: the roots are POSIX paths.
 */
export function pathReadings(value: string, base: string, allowRelative: boolean): string[] | PathProblem {
  if (value.length === 0) return { code: "path.unparsable", message: "empty path" };
  if (PLAIN.test(value)) {
    // The common case: one reading, no decoding.
    if (value.charCodeAt(0) === 47 /* / */) {
      // Without `//` or a `.` segment start the path is already normal.
      const normal = value.includes("/.") || value.includes("//") ? posix.normalize(value) : value;
      return [trimSlash(normal)];
    }
    return allowRelative ? [trimSlash(posix.resolve(base, value))] : relativeProblem(value);
  }
  const forms = [value];
  const problem = literalProblem(value);
  if (problem) return problem;
  for (let i = 0; i < forms.length; i++) {
    const form = forms[i];
    const next = [form.normalize("NFKC")];
    if (PERCENT.test(form) || IIS_UNICODE.test(form)) {
      const decoded = percentDecode(form);
      if (typeof decoded !== "string") return decoded;
      next.push(decoded);
    }
    for (const candidate of next) {
      if (forms.includes(candidate)) continue;
      const nested = literalProblem(candidate);
      if (nested) return nested;
      if (forms.length >= MAX_FORMS) {
        return { code: "path.encoding", message: `more than ${MAX_FORMS} layers of encoding` };
      }
      forms.push(candidate);
    }
  }
  const paths: string[] = [];
  for (const form of forms) {
    const separated = form.replace(OTHER_SEPARATORS, "/");
    for (const reading of separated === form ? [form] : [form, separated]) {
      const resolved = resolveReading(reading, form, base, allowRelative);
      if (typeof resolved !== "string") return resolved;
      if (!paths.includes(resolved)) paths.push(resolved);
    }
  }
  return paths;
}

function literalProblem(text: string): PathProblem | null {
  if (NUL.test(text)) return { code: "path.nul", message: "path contains a NUL byte" };
  if (CONTROL.test(text)) return { code: "path.encoding", message: "path contains control characters" };
  if (LONE_SURROGATE.test(text))
    return { code: "path.encoding", message: "path contains an unpaired surrogate" };
  return null;
}

/** One percent-decoding layer; invalid UTF-8 (including overlong `%c0%ae`) is a problem. */
function percentDecode(text: string): string | PathProblem {
  if (IIS_UNICODE.test(text)) {
    return { code: "path.encoding", message: "non-standard `%u` percent-encoding" };
  }
  let invalid = false;
  const decoded = text.replace(PERCENT_RUNS, (run) => {
    try {
      // decodeURIComponent rejects overlong forms, surrogates and truncated sequences.
      return decodeURIComponent(run);
    } catch {
      invalid = true;
      return run;
    }
  });
  return invalid
    ? { code: "path.encoding", message: "percent-encoding is not valid UTF-8 (overlong or truncated)" }
    : decoded;
}

function resolveReading(
  reading: string,
  form: string,
  base: string,
  allowRelative: boolean,
): string | PathProblem {
  if (DRIVE.test(reading))
    return { code: "path.unparsable", message: "a Windows drive path; roots are POSIX paths" };
  if (UNC.test(form)) return { code: "path.unparsable", message: "a UNC path; roots are POSIX paths" };
  if (URI.test(reading)) return { code: "path.unparsable", message: "a URI, not a file path" };
  if (reading.charCodeAt(0) === 126 /* ~ */) {
    return { code: "path.unparsable", message: "`~` is not expanded; give the path from a root" };
  }
  if (SHELL_EXPANSION.test(reading)) {
    return {
      code: "path.unparsable",
      message: "shell expansions (`$VAR`, `$(...)`, backticks) are not expanded",
    };
  }
  if (reading.charCodeAt(0) === 47 /* / */) return trimSlash(posix.normalize(reading));
  return allowRelative ? trimSlash(posix.resolve(base, reading)) : relativeProblem(reading);
}

function relativeProblem(reading: string): PathProblem {
  return { code: "path.outside", message: `relative path \`${reading.slice(0, 60)}\` is not allowed` };
}

function trimSlash(path: string): string {
  return path.length > 1 && path.charCodeAt(path.length - 1) === 47 ? path.slice(0, -1) : path;
}
