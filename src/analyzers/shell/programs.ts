/**
 * Knowledge about programs that run other code. A word is `null` when it is not static
 * (it holds an expansion, a glob or a brace expansion), so its value is known only at run time.
 */
export type Words = ReadonlyArray<string | null>;

/** Builtins that run text as shell code (or load code): `shell.eval` unless listed in `programs`. */
export const EVAL_BUILTINS: ReadonlySet<string> = new Set([
  "eval",
  "source",
  ".",
  "trap",
  "alias",
  "fc",
  "enable",
  "let",
  "watch",
]);

/** Shells whose `-c` runs its argument as a script. */
export const SHELLS: ReadonlySet<string> = new Set([
  "sh",
  "bash",
  "dash",
  "zsh",
  "ksh",
  "mksh",
  "ash",
  "fish",
  "csh",
  "tcsh",
  "rbash",
]);

/** Programs whose `-c` runs a shell command line (su, runuser, script, flock take it this way too). */
const DASH_C_EVAL: ReadonlySet<string> = new Set([...SHELLS, "su", "runuser", "script", "flock"]);

/** True when `words` runs a string as shell code through `-c` (also clustered, as in `-ec`). */
export function runsDashC(words: Words): boolean {
  if (!DASH_C_EVAL.has(words[0] ?? "")) return false;
  for (let i = 1; i < words.length; i++) {
    const word = words[i];
    if (word === null) return true;
    if (word === "-c" || word === "--command" || word.startsWith("--command=")) return true;
    if (SHELLS.has(words[0] ?? "") && /^-[a-zA-Z]+$/.test(word) && word.includes("c")) return true;
    if (word === "--") return false;
  }
  return false;
}

interface WrapperSpec {
  /** Options that take the next word (or an attached value: `-n5`, `--signal=KILL`). */
  valued?: readonly string[];
  flags?: readonly string[];
  /** Options that make the wrapper run a shell string or a shell: always `shell.eval`. */
  evals?: readonly string[];
  /** Options after which nothing is run (`command -v`). */
  queries?: readonly string[];
  /** Operands before the wrapped command (`timeout DURATION`, `chroot NEWROOT`). */
  operands?: number;
  /** `NAME=value` words before the command are environment assignments (`env`). */
  assignments?: boolean;
  /** `-5` style numeric options (`nice -5`). */
  numeric?: boolean;
}

/**
 * Wrappers whose wrapped command is checked like any other: `timeout 5 rm x` needs `rm` to be
 * allowed. An option we do not know makes the wrapped program unknowable, which is a finding.
 */
const WRAPPERS: Readonly<Record<string, WrapperSpec>> = {
  env: {
    valued: ["-u", "--unset", "-C", "--chdir"],
    flags: ["-i", "--ignore-environment", "-0", "--null", "-v", "--debug", "-"],
    evals: ["-S", "--split-string"],
    assignments: true,
  },
  nice: { valued: ["-n", "--adjustment"], numeric: true },
  nohup: {},
  timeout: {
    valued: ["-s", "--signal", "-k", "--kill-after"],
    flags: ["--preserve-status", "--foreground", "-v", "--verbose", "-f"],
    operands: 1,
  },
  stdbuf: { valued: ["-i", "-o", "-e", "--input", "--output", "--error"] },
  ionice: { valued: ["-c", "--class", "-n", "--classdata"], flags: ["-t", "--ignore"] },
  setsid: { flags: ["-c", "--ctty", "-f", "--fork", "-w", "--wait"] },
  command: { flags: ["-p"], queries: ["-v", "-V"] },
  builtin: {},
  exec: { valued: ["-a"], flags: ["-c", "-l"] },
  time: {
    valued: ["-f", "--format", "-o", "--output"],
    flags: ["-p", "--portability", "-v", "--verbose", "-a", "--append", "-q", "--quiet"],
  },
  xargs: {
    valued: [
      "-a",
      "--arg-file",
      "-d",
      "--delimiter",
      "-E",
      "-I",
      "-L",
      "-n",
      "--max-args",
      "-P",
      "--max-procs",
      "-s",
      "--max-chars",
      "--process-slot-var",
    ],
    flags: [
      "-0",
      "--null",
      "-r",
      "--no-run-if-empty",
      "-t",
      "--verbose",
      "-p",
      "--interactive",
      "-x",
      "--exit",
      "-o",
      "--open-tty",
      "-e",
      "-i",
      "-l",
    ],
  },
  sudo: {
    valued: [
      "-u",
      "--user",
      "-g",
      "--group",
      "-C",
      "--close-from",
      "-D",
      "--chdir",
      "-h",
      "--host",
      "-p",
      "--prompt",
      "-r",
      "--role",
      "-t",
      "--type",
      "-U",
      "--other-user",
      "-T",
      "--command-timeout",
      "-R",
      "--chroot",
    ],
    flags: [
      "-A",
      "--askpass",
      "-E",
      "--preserve-env",
      "-H",
      "--set-home",
      "-k",
      "-K",
      "-n",
      "--non-interactive",
    ],
    evals: ["-s", "--shell", "-i", "--login", "-e", "--edit"],
    queries: ["-l", "--list", "-v", "--validate", "-V", "--version"],
  },
  doas: { valued: ["-u", "-C"], flags: ["-n"], evals: ["-s"] },
  chroot: { valued: ["--userspec", "--groups"], flags: ["--skip-chdir"], operands: 1 },
  taskset: { flags: ["-a", "--all-tasks", "-c", "--cpu-list"], operands: 1 },
  unbuffer: {},
  busybox: {},
};

export type Unwrapped =
  | { kind: "none" }
  | { kind: "command"; words: Words; assignments: string[] }
  | { kind: "eval"; option: string }
  | { kind: "unknown"; why: string };

/** If `words` is a known wrapper, what it runs; undefined when `words[0]` is not a wrapper. */
export function unwrap(words: Words): Unwrapped | undefined {
  const spec = WRAPPERS[words[0] ?? ""];
  if (spec === undefined) return undefined;
  let i = 1;
  while (i < words.length) {
    const word = words[i];
    if (word === null) return { kind: "unknown", why: "a computed option" };
    if (word === "--") {
      i++;
      break;
    }
    if (word === "-" && spec.flags?.includes("-")) {
      i++;
      continue;
    }
    if (!word.startsWith("-") || word === "-") break;
    if (spec.evals?.some((option) => matchesOption(word, option))) return { kind: "eval", option: word };
    if (spec.queries?.includes(word)) return { kind: "none" };
    if (spec.flags?.includes(word) || (spec.numeric && /^-\d+$/.test(word))) {
      i++;
      continue;
    }
    const valued = spec.valued?.find((option) => matchesOption(word, option));
    if (valued === undefined) return { kind: "unknown", why: `option \`${word}\`` };
    i += word === valued ? 2 : 1;
  }
  const assignments: string[] = [];
  if (spec.assignments) {
    while (i < words.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[i] ?? "")) {
      assignments.push((words[i] as string).slice(0, (words[i] as string).indexOf("=")));
      i++;
    }
  }
  i += spec.operands ?? 0;
  if (i > words.length) return { kind: "unknown", why: "missing operands" };
  const rest = words.slice(i);
  if (rest.length === 0) return { kind: "none" };
  return { kind: "command", words: words[0] === "xargs" ? xargsRun(words, rest) : rest, assignments };
}

/**
 * xargs adds words read from its input: at the end, or in place of the replace string given by
 * `-I R` / `-i` / `--replace` — and those words may be options (`echo -delete | xargs find .`).
 * They are unknown, so they stand as computed words (`null`) in what it runs.
 */
function xargsRun(words: Words, rest: Words): Words {
  let replace: string | undefined;
  for (let i = 1; i < words.length - rest.length; i++) {
    const word = words[i] ?? "";
    if (word === "-I") replace = words[i + 1] ?? undefined;
    else if (word.startsWith("-I")) replace = word.slice(2);
    else if (word === "-i" || word === "--replace") replace = "{}";
    else if (word.startsWith("-i")) replace = word.slice(2);
    else if (word.startsWith("--replace=")) replace = word.slice("--replace=".length);
  }
  if (replace === undefined || replace === "") return [...rest, null];
  return rest.map((word) => (word?.includes(replace) ? null : word));
}

/** `-n` matches `-n`, `-n5`; `--signal` matches `--signal` and `--signal=KILL`. */
function matchesOption(word: string, option: string): boolean {
  if (word === option) return true;
  if (option.startsWith("--")) return word.startsWith(`${option}=`);
  return option.length === 2 && word.length > 2 && word.startsWith(option) && !word.startsWith("--");
}

/** `find ... -exec CMD ... ;`: each command find would run. */
export function findExecs(words: Words): Words[] {
  const runs: Words[] = [];
  for (let i = 1; i < words.length; i++) {
    const word = words[i];
    if (word === "-exec" || word === "-execdir" || word === "-ok" || word === "-okdir") {
      let end = i + 1;
      while (end < words.length && words[end] !== ";" && words[end] !== "+") end++;
      runs.push(words.slice(i + 1, end));
      i = end;
    }
  }
  return runs;
}

/**
 * Options of common programs that run a command given on the command line (GTFOBins-style).
 * Allowing one of these programs does not allow these options.
 */
const EXEC_OPTIONS: Readonly<Record<string, readonly string[]>> = {
  tar: [
    "--checkpoint-action",
    "--to-command",
    "--use-compress-program",
    "-I",
    "--info-script",
    "--new-volume-script",
    "-F",
    "--rsh-command",
    "--rmt-command",
  ],
  git: [
    "-c",
    "--config-env",
    "--exec-path",
    "--upload-pack",
    "--receive-pack",
    "-O",
    "--open-files-in-pager",
  ],
  rsync: ["-e", "--rsh", "--rsync-path"],
  ssh: ["-o", "-F"],
  scp: ["-S", "-o", "-F"],
  zip: ["-T", "-TT", "--unzip-command"],
  man: ["-P", "--pager", "-H", "--html"],
  less: ["-P"],
};

/**
 * The first option in `words` that makes the program run another command, if any; `null` when an
 * argument is computed at run time (a glob such as `tar cf x.tar *` expands to file names, and a
 * file named `--checkpoint-action=exec=sh` becomes an option).
 */
export function execOption(words: Words): string | null | undefined {
  const options = EXEC_OPTIONS[words[0] ?? ""];
  if (options === undefined) return undefined;
  for (let i = 1; i < words.length; i++) {
    const word = words[i];
    if (word === null) return null;
    if (word === "--" && words[0] !== "find") return undefined;
    if (options.some((option) => matchesOption(word, option) || word === option)) return word;
  }
  return undefined;
}

/** Environment variables that make programs load or run other code; never safe to set. */
export function isDangerousVariable(name: string): boolean {
  return (
    DANGEROUS_VARIABLES.has(name) ||
    name.startsWith("LD_") ||
    name.startsWith("DYLD_") ||
    name.startsWith("BASH_FUNC_") ||
    name.startsWith("GIT_CONFIG")
  );
}

const DANGEROUS_VARIABLES = new Set([
  "PATH",
  "BASH_ENV",
  "ENV",
  "IFS",
  "PS4",
  "PROMPT_COMMAND",
  "SHELLOPTS",
  "BASHOPTS",
  "GIT_SSH",
  "GIT_SSH_COMMAND",
  "GIT_EXTERNAL_DIFF",
  "GIT_PAGER",
  "GIT_EDITOR",
  "GIT_EXEC_PATH",
  "GIT_ASKPASS",
  "SSH_ASKPASS",
  "PAGER",
  "MANPAGER",
  "EDITOR",
  "VISUAL",
  "LESSOPEN",
  "LESSCLOSE",
  "PYTHONSTARTUP",
  "PYTHONPATH",
  "PERL5OPT",
  "PERL5LIB",
  "NODE_OPTIONS",
  "RUBYOPT",
  "JAVA_TOOL_OPTIONS",
  "TAR_OPTIONS",
]);
