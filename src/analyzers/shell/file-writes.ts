import { preview } from "../kind.js";
import type { Words } from "./programs.js";

/*
 * Options and operands that make a read-only-looking program write or delete files (`sort -o`,
 * `find -delete`, `tee FILE`, `sed -i`, `tar -x`) or run a command (`sed e`). Each program's
 * own argument grammar is followed (getopt clusters, attached values, GNU long-option
 * abbreviations, find's expression), so a value such as `grep -e -o` or `find -name -delete` is
 * not mistaken for an option. No library models these per-program grammars, hence hand-written.
 */

/** What an invocation does besides reading, as a message fragment (`\`sort -o\` writes a file`). */
export interface FileEffect {
  readonly kind: "writes" | "runs" | "unknown";
  readonly what: string;
}

/** Targets that are not files: writing there changes nothing on disk. */
const SINKS = new Set(["/dev/null", "/dev/stdout", "/dev/stderr", "-"]);

/** The first write, delete or command-running effect of `words`, if the program is known to have one. */
export function fileEffect(words: Words): FileEffect | undefined {
  switch (words[0]) {
    case "find":
      return findEffect(words);
    case "sort":
      return getoptEffect(words, SORT);
    case "uniq":
      return getoptEffect(words, UNIQ);
    case "tee":
      return getoptEffect(words, TEE);
    case "less":
      return getoptEffect(words, LESS);
    case "sed":
      return sedEffect(words);
    case "tar":
      return tarEffect(words);
    case "git":
      return gitEffect(words);
    default:
      return undefined;
  }
}

const unknown = (program: string, why: string): FileEffect => ({
  kind: "unknown",
  what: `cannot tell whether \`${program}\` writes files or runs commands (${why})`,
});
const writes = (what: string): FileEffect => ({ kind: "writes", what: `\`${what}\` writes a file` });
const COMPUTED = "a computed argument could be an option";

interface Getopt {
  readonly program: string;
  /** Short options that take a value (attached or the next word). */
  readonly valued: string;
  /** Short options whose value is a file written. */
  readonly writeShort: string;
  /** Long options (without `--`) that take a value unless given as `--name=value`. */
  readonly valuedLong: readonly string[];
  /** Long options whose value is a file written. */
  readonly writeLong: readonly string[];
  /** Long options that run a program. */
  readonly runLong?: readonly string[];
  /** Which operands (0-based) are files written: `all`, or an index (`uniq IN OUT`). */
  readonly writeOperands?: "all" | number;
}

const SORT: Getopt = {
  program: "sort",
  valued: "kotST",
  writeShort: "o",
  valuedLong: [
    "batch-size",
    "buffer-size",
    "compress-program",
    "field-separator",
    "files0-from",
    "key",
    "output",
    "parallel",
    "random-source",
    "sort",
    "temporary-directory",
  ],
  writeLong: ["output"],
  runLong: ["compress-program"],
};
const UNIQ: Getopt = {
  program: "uniq",
  valued: "fsw",
  writeShort: "",
  valuedLong: ["skip-fields", "skip-chars", "check-chars"],
  writeLong: [],
  writeOperands: 1,
};
const TEE: Getopt = {
  program: "tee",
  valued: "",
  writeShort: "",
  valuedLong: [],
  writeLong: [],
  writeOperands: "all",
};
const LESS: Getopt = {
  program: "less",
  valued: "bhjkoOpPtTxyz#",
  writeShort: "oO",
  valuedLong: ["log-file", "LOG-FILE", "tag", "tag-file", "pattern", "prompt", "tabs", "window", "shift"],
  writeLong: ["log-file", "LOG-FILE"],
};

/** GNU getopt_long also accepts any unambiguous prefix of a long option (`--out=FILE`). */
function longMatches(name: string, options: readonly string[]): string | undefined {
  return name.length === 0 ? undefined : options.find((option) => option.startsWith(name));
}

function getoptEffect(words: Words, spec: Getopt): FileEffect | undefined {
  let operand = 0;
  let options = true;
  for (let i = 1; i < words.length; i++) {
    const word = words[i];
    if (word === null) return unknown(spec.program, COMPUTED);
    if (options && word === "--") {
      options = false;
      continue;
    }
    if (options && word.startsWith("--")) {
      const eq = word.indexOf("=");
      const name = word.slice(2, eq < 0 ? undefined : eq);
      const value = eq < 0 ? words[i + 1] : word.slice(eq + 1);
      const run = longMatches(name, spec.runLong ?? []);
      if (run !== undefined) return { kind: "runs", what: `\`${spec.program} --${run}\` runs a program` };
      const write = longMatches(name, spec.writeLong);
      if (write !== undefined && !SINKS.has(value ?? "")) return writes(`${spec.program} --${write}`);
      if (eq < 0 && longMatches(name, spec.valuedLong) !== undefined) i++;
      continue;
    }
    if (options && word.length > 1 && word.startsWith("-")) {
      for (let j = 1; j < word.length; j++) {
        const letter = word[j]!;
        if (!spec.valued.includes(letter)) continue;
        const attached = j + 1 < word.length;
        const value = attached ? word.slice(j + 1) : words[i + 1];
        if (spec.writeShort.includes(letter) && !SINKS.has(value ?? "")) {
          return writes(`${spec.program} -${letter}`);
        }
        if (!attached) i++;
        break;
      }
      continue;
    }
    const written = spec.writeOperands === "all" || spec.writeOperands === operand;
    if (written && !SINKS.has(word)) return writes(`${spec.program} ${preview(word, 40)}`);
    operand++;
  }
  return undefined;
}

/** find primaries that take one argument (two for `-fprintf`), and those that write or delete. */
const FIND_VALUED = new Set([
  "-amin",
  "-anewer",
  "-atime",
  "-cmin",
  "-cnewer",
  "-context",
  "-ctime",
  "-files0-from",
  "-fls",
  "-fprint",
  "-fprint0",
  "-fstype",
  "-gid",
  "-group",
  "-ilname",
  "-iname",
  "-inum",
  "-ipath",
  "-iregex",
  "-iwholename",
  "-links",
  "-lname",
  "-maxdepth",
  "-mindepth",
  "-mmin",
  "-mtime",
  "-name",
  "-newer",
  "-path",
  "-perm",
  "-printf",
  "-regex",
  "-regextype",
  "-samefile",
  "-size",
  "-type",
  "-uid",
  "-used",
  "-user",
  "-wholename",
  "-xtype",
]);
const FIND_WRITES = new Set(["-fls", "-fprint", "-fprint0", "-fprintf"]);
const FIND_EXEC = new Set(["-exec", "-execdir", "-ok", "-okdir"]);

function findEffect(words: Words): FileEffect | undefined {
  let i = 1;
  // Leading options: -H, -L, -P, -D debugopts, -Olevel.
  while (i < words.length) {
    const word = words[i];
    if (word === "-H" || word === "-L" || word === "-P" || /^-O\d*$/.test(word ?? "")) i++;
    else if (word === "-D") i += 2;
    else break;
  }
  for (; i < words.length; i++) {
    const word = words[i];
    // A computed starting point or primary could be `-delete`, `-fprint` or `-exec`.
    if (word === null) return unknown("find", COMPUTED);
    if (FIND_EXEC.has(word)) {
      // The command is checked as its own invocation; skip to its terminator.
      while (i + 1 < words.length && words[i + 1] !== ";" && words[i + 1] !== "+") i++;
      i++;
      continue;
    }
    if (word === "-delete") return { kind: "writes", what: "`find -delete` deletes files" };
    if (FIND_WRITES.has(word) && !SINKS.has(words[i + 1] ?? "")) return writes(`find ${word}`);
    if (word === "-fprintf") i += 2;
    else if (FIND_VALUED.has(word) || /^-newer[amcBt][amcBt]$/.test(word)) i++;
  }
  return undefined;
}

/** sed: `-i` edits files in place; the script's `w`/`W` commands and `s///w` write, `e` runs. */
function sedEffect(words: Words): FileEffect | undefined {
  const scripts: Array<string | null> = [];
  let operandScript = true;
  let options = true;
  for (let i = 1; i < words.length; i++) {
    const word = words[i];
    if (word === undefined) break;
    if (options && word === "--") {
      options = false;
      continue;
    }
    const isOption = options && word !== null && word.length > 1 && word.startsWith("-");
    if (isOption && word.startsWith("--")) {
      const eq = word.indexOf("=");
      const name = word.slice(2, eq < 0 ? undefined : eq);
      if (longMatches(name, ["in-place"]) !== undefined) return writes("sed --in-place");
      if (longMatches(name, ["file"]) !== undefined) return unknown("sed", "the script is read from a file");
      const valued = longMatches(name, ["expression", "line-length"]);
      if (valued === undefined) continue;
      const value = eq < 0 ? words[++i] : word.slice(eq + 1);
      if (valued === "expression") {
        scripts.push(value ?? null);
        operandScript = false;
      }
      continue;
    }
    if (isOption) {
      for (let j = 1; j < word.length; j++) {
        const letter = word[j]!;
        if (letter === "i" || letter === "I") return writes(`sed -${letter}`);
        if (letter === "e" || letter === "f" || letter === "l") {
          const value = j + 1 < word.length ? word.slice(j + 1) : words[++i];
          if (letter === "f") return unknown("sed", "the script is read from a file");
          if (letter === "e") {
            scripts.push(value ?? null);
            operandScript = false;
          }
          break;
        }
      }
      continue;
    }
    if (operandScript) {
      scripts.push(word);
      operandScript = false;
    } else if (word === null) {
      return unknown("sed", COMPUTED);
    }
  }
  for (const script of scripts) {
    if (script === null) return unknown("sed", "the script is computed at run time");
    const effect = sedScript(script);
    if (effect === "runs") return { kind: "runs", what: "`sed` script runs a command (`e`)" };
    if (effect === "writes") return writes("sed w");
    if (effect === "unknown") return unknown("sed", "a script command it does not know");
  }
  return undefined;
}

/**
 * Walks a sed script's commands (addresses, `!`, blocks, `s` and `y` with any delimiter, text
 * arguments) far enough to find those that write a file or run a command.
 */
export function sedScript(script: string): "writes" | "runs" | "unknown" | undefined {
  const n = script.length;
  let i = 0;
  const skipSpace = () => {
    while (i < n && (script[i] === " " || script[i] === "\t")) i++;
  };
  const toLineEnd = () => {
    const start = i;
    while (i < n && script[i] !== "\n") i++;
    return script.slice(start, i).trim();
  };
  // A delimited part (`/re/`, `\%re%`, the halves of `s` and `y`); false when unterminated.
  const delimited = (delimiter: string): boolean => {
    while (i < n && script[i] !== delimiter) {
      if (script[i] === "\\") i++;
      else if (script[i] === "\n" && delimiter !== "\n") return false;
      i++;
    }
    if (i >= n) return false;
    i++;
    return true;
  };
  const address = (): boolean => {
    const c = script[i];
    if (c === "/") {
      i++;
      if (!delimited("/")) return false;
    } else if (c === "\\") {
      const delimiter = script[i + 1];
      i += 2;
      if (delimiter === undefined || !delimited(delimiter)) return false;
    } else if (c === "$") {
      i++;
      return true;
    } else {
      while (i < n && /[0-9~+]/.test(script[i]!)) i++;
      return true;
    }
    while (i < n && (script[i] === "I" || script[i] === "M")) i++;
    return true;
  };
  while (i < n) {
    while (i < n && /[\s;]/.test(script[i]!)) i++;
    if (i >= n) break;
    if (script[i] === "#") {
      toLineEnd();
      continue;
    }
    if (!address()) return "unknown";
    skipSpace();
    if (script[i] === ",") {
      i++;
      skipSpace();
      if (!address()) return "unknown";
    }
    skipSpace();
    while (script[i] === "!") {
      i++;
      skipSpace();
    }
    const command = script[i++];
    switch (command) {
      case undefined:
        break;
      case "{":
      case "}":
      case "=":
      case "d":
      case "D":
      case "g":
      case "G":
      case "h":
      case "H":
      case "n":
      case "N":
      case "p":
      case "P":
      case "x":
      case "z":
      case "F":
        break;
      case "l":
      case "L":
      case "q":
      case "Q":
        while (i < n && /[0-9 ]/.test(script[i]!)) i++;
        break;
      case ":":
      case "b":
      case "t":
      case "T":
      case "v":
        while (i < n && script[i] !== "\n" && script[i] !== ";") i++;
        break;
      case "a":
      case "i":
      case "c":
        // Text to the end of the line; a trailing backslash continues it.
        while (i < n && script[i] !== "\n") i += script[i] === "\\" ? 2 : 1;
        break;
      case "r":
      case "R":
        toLineEnd();
        break;
      case "w":
      case "W": {
        skipSpace();
        if (!SINKS.has(toLineEnd())) return "writes";
        break;
      }
      case "e":
        return "runs";
      case "s":
      case "y": {
        const delimiter = script[i++];
        if (delimiter === undefined || delimiter === "\\" || delimiter === "\n") return "unknown";
        if (!delimited(delimiter) || !delimited(delimiter)) return "unknown";
        if (command === "y") break;
        while (i < n && /[gpiImMe0-9w]/.test(script[i]!)) {
          const flag = script[i++];
          if (flag === "e") return "runs";
          if (flag === "w") {
            skipSpace();
            if (!SINKS.has(toLineEnd())) return "writes";
          }
        }
        break;
      }
      default:
        return "unknown";
    }
  }
  return undefined;
}

/** tar short options that take a value; in the old style (`tar czf x.tar`) they take the next words. */
const TAR_VALUED = "bCfFgHIKLNTVX";
/** Modes that change the archive (c, r, u, A, --delete) or extract files (x). */
const TAR_MODES = "cruAx";
const TAR_LONG_MODES = ["create", "append", "update", "catenate", "concatenate", "delete", "extract", "get"];
const TAR_LONG_VALUED = [
  "file",
  "directory",
  "blocking-factor",
  "exclude",
  "exclude-from",
  "files-from",
  "label",
  "newer",
  "after-date",
  "newer-mtime",
  "owner",
  "group",
  "mode",
  "mtime",
  "transform",
  "xform",
  "listed-incremental",
  "format",
  "tape-length",
  "volno-file",
  "record-size",
  "strip-components",
  "suffix",
  "backup",
  "occurrence",
  "quoting-style",
  "to-command",
  "use-compress-program",
  "checkpoint",
  "checkpoint-action",
];

/** tar: creating or updating an archive writes it (unless to stdout); extracting writes files. */
function tarEffect(words: Words): FileEffect | undefined {
  let mode: string | undefined;
  let archive: string | null | undefined;
  let toStdout = false;
  let pending = 0;
  const valueFor: string[] = [];
  const shortCluster = (letters: string, from: number, i: number): number => {
    for (let j = from; j < letters.length; j++) {
      const letter = letters[j]!;
      if (TAR_MODES.includes(letter)) mode ??= letter;
      if (letter === "O") toStdout = true;
      if (!TAR_VALUED.includes(letter)) continue;
      if (from === 0) {
        // Old style: each valued letter takes the next word in turn.
        valueFor.push(letter);
        continue;
      }
      const value = j + 1 < letters.length ? letters.slice(j + 1) : words[++i];
      if (letter === "f") archive = value;
      return i;
    }
    return i;
  };
  for (let i = 1; i < words.length; i++) {
    const word = words[i];
    if (word === null || word === undefined) {
      if (pending > 0) {
        pending--;
        if (valueFor.shift() === "f") archive = null;
      }
      continue;
    }
    if (i === 1 && !word.startsWith("-")) {
      shortCluster(word, 0, i);
      pending = valueFor.length;
      continue;
    }
    if (pending > 0) {
      pending--;
      if (valueFor.shift() === "f") archive = word;
      continue;
    }
    if (word === "--") break;
    if (word.startsWith("--")) {
      const eq = word.indexOf("=");
      const name = word.slice(2, eq < 0 ? undefined : eq);
      const long = longMatches(name, TAR_LONG_MODES);
      if (long !== undefined) mode ??= long;
      if (longMatches(name, ["to-stdout"]) !== undefined) toStdout = true;
      if (longMatches(name, ["file"]) !== undefined) archive = eq < 0 ? words[i + 1] : word.slice(eq + 1);
      if (eq < 0 && longMatches(name, TAR_LONG_VALUED) !== undefined) i++;
      continue;
    }
    if (word.startsWith("-") && word.length > 1) i = shortCluster(word, 1, i);
  }
  if (mode === undefined) return undefined;
  const extracts = mode === "x" || mode === "extract" || mode === "get";
  if (extracts) return toStdout ? undefined : { kind: "writes", what: "`tar` extraction writes files" };
  if (typeof archive === "string" && SINKS.has(archive)) return undefined;
  return { kind: "writes", what: "`tar` writes an archive" };
}

/** git: `--output=FILE` (log, diff, show, ...) and `-o` of format-patch and archive write files. */
function gitEffect(words: Words): FileEffect | undefined {
  const sub = words.findIndex((word, i) => i > 0 && word !== null && !word.startsWith("-"));
  for (let i = 1; i < words.length; i++) {
    const word = words[i];
    if (word === null || word === undefined) continue;
    if (word === "--") break;
    if (word.startsWith("--o") && "--output".startsWith(word.split("=")[0]!)) {
      const value = word.includes("=") ? word.slice(word.indexOf("=") + 1) : words[i + 1];
      if (!SINKS.has(value ?? "")) return writes("git --output");
    }
    if (word.startsWith("--output-directory")) return writes("git --output-directory");
    if (
      (word === "-o" || (word.startsWith("-o") && !word.startsWith("--"))) &&
      (words[sub] === "format-patch" || words[sub] === "archive")
    ) {
      return writes(`git ${words[sub]} -o`);
    }
  }
  return undefined;
}
