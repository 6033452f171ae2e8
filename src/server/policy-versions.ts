import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { AuditEvent } from "../audit/types.js";
import { PolicyLoadError, ToolwardenError } from "../core/index.js";
import type { PolicyIssue } from "../core/index.js";
import type { Warden } from "../gateway/index.js";
import { compilePolicy, compilePolicyFile, compilePolicyText, loadPolicyText } from "../policy/index.js";
import { fromTransfer } from "../policy/transfer.js";
import { UploadCompiler } from "./upload-compiler.js";
import { uploadExtends } from "./upload-extends.js";
import type { CompiledPolicy } from "../policy/index.js";
import type { EventBus } from "./events.js";

/** One stored policy version; its text is `<policies>/<hash>.yaml`. */
export interface PolicyVersion {
  hash: string;
  name: string;
  /** `file`: the watched policy file; `upload`: sent by an admin. */
  origin: "file" | "upload";
  createdAt: string;
  createdBy: string;
}

/** A policy change: which version was active before and which is now. */
export interface PolicyChange {
  action: "activate" | "rollback" | "reload" | "start";
  from: string;
  to: string;
  by: string;
}

interface Manifest {
  versions: PolicyVersion[];
  /** Activation history, oldest first; rollback pops it. */
  stack: string[];
}

export interface PolicyManagerOptions {
  warden: Warden;
  /** The policy file given with `-p`; uploads resolve `extends` from its folder. */
  file: string;
  /** Where versions are kept. */
  dir: string;
  bus: EventBus;
  onChange?: (result: "activated" | "rejected") => void;
}

/**
 * Every policy the server has run, by hash: the watched file's versions and admin uploads. Activation
 * swaps the Warden's policy atomically and audits both hashes; rollback returns to the version that
 * was active before. Changes are serialized.
 */
export class PolicyManager {
  readonly file: string;
  readonly #options: PolicyManagerOptions;
  readonly #compiled = new Map<string, CompiledPolicy>();
  readonly #manifest: Manifest;
  readonly #manifestFile: string;
  #queue: Promise<unknown> = Promise.resolve();
  readonly #compiler = new UploadCompiler();

  constructor(options: PolicyManagerOptions) {
    this.#options = options;
    this.file = resolve(options.file);
    mkdirSync(options.dir, { recursive: true, mode: 0o700 });
    this.#manifestFile = join(options.dir, "versions.json");
    this.#manifest = readManifest(this.#manifestFile);
    const active = options.warden.policy;
    this.#compiled.set(active.hash, active);
  }

  get active(): CompiledPolicy {
    return this.#options.warden.policy;
  }

  /** The files the active file version is made of (the file and what it extends), for the watcher. */
  sourceFiles(): string[] {
    const fromFile =
      [...this.#compiled.values()].find((p) => p.loaded.source.file === this.file) ?? this.active;
    return fromFile.loaded.sources.map((source) => source.file);
  }

  list(): Array<PolicyVersion & { active: boolean }> {
    const active = this.active.hash;
    return this.#manifest.versions
      .map((version) => ({ ...version, active: version.hash === active }))
      .reverse();
  }

  /** A version and its text, or undefined. */
  get(hash: string): { version: PolicyVersion; source: string } | undefined {
    const version = this.#manifest.versions.find((v) => v.hash === hash);
    if (!version) return undefined;
    return { version, source: readFileSync(this.#textFile(hash), "utf8") };
  }

  /** Compiles policy text as an upload; throws `PolicyLoadError` whose issues name `upload:line:col`. */
  compileUpload(source: string): CompiledPolicy {
    const fake = join(dirname(this.file), "upload.yaml");
    try {
      return compilePolicy(
        loadPolicyText(source, fake, {
          collect: true,
          resolveExtends: uploadExtends({
            upload: fake,
            file: this.file,
            dir: this.#options.dir,
            versions: this.#manifest.versions,
          }),
        }),
      );
    } catch (error) {
      if (error instanceof PolicyLoadError) {
        throw new PolicyLoadError(
          error.issues.map((issue) => (issue.file === fake ? { ...issue, file: "upload" } : issue)),
        );
      }
      throw error;
    }
  }

  /**
   * `compileUpload` with the parsing and validation (nine tenths of the work for a large policy)
   * on a worker thread, so an upload never stalls the decisions of other requests; the main
   * thread compiles the validated result without parsing it again. Uploads are compiled one at a
   * time. Without the built worker (running from source) it compiles here.
   */
  async compileUploadAsync(source: string): Promise<CompiledPolicy> {
    const answer = await this.#compileOffThread(source);
    if (!answer) return this.compileUpload(source);
    const policy = compilePolicy(fromTransfer(answer.transfer));
    if (policy.hash !== answer.hash) return this.compileUpload(source);
    return policy;
  }

  /** Validates an upload entirely on the worker thread: its name and hash, or `PolicyLoadError`. */
  async validateUpload(source: string): Promise<{ name: string; hash: string }> {
    const answer = await this.#compileOffThread(source);
    if (!answer) return this.compileUpload(source);
    return { name: answer.name, hash: answer.hash };
  }

  async #compileOffThread(source: string) {
    const fake = join(dirname(this.file), "upload.yaml");
    const answer = await this.#compiler.compile({
      source,
      upload: fake,
      file: this.file,
      dir: this.#options.dir,
      versions: this.#manifest.versions.map(({ hash, name, origin }) => ({ hash, name, origin })),
    });
    if (!answer) return undefined;
    if (!answer.ok) {
      if (answer.issues) {
        throw new PolicyLoadError(
          answer.issues.map((issue) => (issue.file === fake ? { ...issue, file: "upload" } : issue)),
        );
      }
      throw new ToolwardenError("policy_compile", answer.error ?? "the policy could not be compiled");
    }
    return answer;
  }

  /** Records the policy the server started with (the file) and audits the start. */
  start(): Promise<PolicyChange> {
    return this.#serial(async () => {
      const policy = this.active;
      this.#store(policy, "file", "server");
      const from = this.#manifest.stack.at(-1) ?? policy.hash;
      if (this.#manifest.stack.at(-1) !== policy.hash) this.#manifest.stack.push(policy.hash);
      this.#save();
      const change: PolicyChange = { action: "start", from, to: policy.hash, by: "server" };
      await this.#audit(change);
      return change;
    });
  }

  /** Validates and stores an uploaded version; throws `PolicyLoadError`. Activates it when asked. */
  async upload(
    source: string,
    by: string,
    activate = false,
  ): Promise<{ version: PolicyVersion; change?: PolicyChange }> {
    if (!activate) {
      // Stored without compiling on this thread; activation compiles it (off the thread too).
      const { name, hash } = await this.validateUpload(source);
      return this.#serial(async () => {
        const version = this.#storeText(hash, name, source, "upload", by);
        this.#save();
        return { version };
      });
    }
    const policy = await this.compileUploadAsync(source);
    return this.#serial(async () => {
      const version = this.#store(policy, "upload", by);
      this.#save();
      return { version, change: await this.#activate(policy, "activate", by) };
    });
  }

  /** Activates a stored version; throws `ToolwardenError` (`version_unknown`, `version_changed`). */
  activate(hash: string, by: string): Promise<PolicyChange> {
    return this.#serial(async () => this.#activate(await this.#loadAsync(hash), "activate", by));
  }

  /** Goes back to the version active before the current one; throws `ToolwardenError` (`no_rollback`). */
  rollback(by: string): Promise<PolicyChange> {
    return this.#serial(async () => {
      const stack = this.#manifest.stack;
      const current = this.active.hash;
      while (stack.length && stack.at(-1) === current) stack.pop();
      const previous = stack.at(-1);
      if (!previous) {
        stack.push(current);
        throw new ToolwardenError("no_rollback", "there is no earlier version to roll back to");
      }
      stack.pop();
      return this.#activate(await this.#loadAsync(previous), "rollback", by);
    });
  }

  /**
   * Re-reads the policy file: an unchanged file does nothing, a valid new one is stored and
   * activated, an invalid one is refused (the old policy stays) and audited with its errors.
   */
  reloadFile(): Promise<{
    result: "unchanged" | "activated" | "rejected";
    change?: PolicyChange;
    issues?: PolicyIssue[];
  }> {
    return this.#serial(async () => {
      let policy: CompiledPolicy;
      try {
        policy = compilePolicyFile(this.file);
      } catch (error) {
        const issues =
          error instanceof PolicyLoadError
            ? error.issues
            : [{ file: this.file, line: 1, col: 1, message: (error as Error).message }];
        const errors = issues.slice(0, 20).map((i) => `${i.file}:${i.line}:${i.col}: ${i.message}`);
        await this.#options.warden.appendAudit({
          kind: "policy",
          policy: this.active.hash,
          reason: "policy file rejected; the active policy stays",
          data: { action: "reload_rejected", from: this.active.hash, file: this.file, errors },
        });
        this.#options.bus.emit({ type: "policy", action: "reload_rejected", from: this.active.hash, errors });
        this.#options.onChange?.("rejected");
        return { result: "rejected" as const, issues };
      }
      if (policy.hash === this.active.hash) return { result: "unchanged" as const };
      this.#store(policy, "file", "file-watch");
      this.#save();
      return { result: "activated" as const, change: await this.#activate(policy, "reload", "file-watch") };
    });
  }

  #serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task, task);
    this.#queue = run.catch(() => {});
    return run;
  }

  /** `#load`, compiling a stored upload off the event loop. */
  async #loadAsync(hash: string): Promise<CompiledPolicy> {
    const cached = this.#compiled.get(hash);
    if (cached) return cached;
    const stored = this.get(hash);
    if (stored?.version.origin !== "upload") return this.#load(hash);
    return this.#remember(hash, await this.compileUploadAsync(stored.source));
  }

  #load(hash: string): CompiledPolicy {
    const cached = this.#compiled.get(hash);
    if (cached) return cached;
    const stored = this.get(hash);
    if (!stored) throw new ToolwardenError("version_unknown", `no policy version \`${hash}\``);
    return this.#remember(
      hash,
      stored.version.origin === "file"
        ? compilePolicyText(stored.source, this.file)
        : this.compileUpload(stored.source),
    );
  }

  /** Caches a stored version compiled again; it must compile to its own hash, else what it extends changed. */
  #remember(hash: string, policy: CompiledPolicy): CompiledPolicy {
    if (policy.hash !== hash) {
      throw new ToolwardenError(
        "version_changed",
        `policy version \`${hash.slice(0, 12)}\` now compiles to \`${policy.hash.slice(0, 12)}\`: a file or version it extends has changed`,
      );
    }
    this.#compiled.set(hash, policy);
    return policy;
  }

  #store(policy: CompiledPolicy, origin: PolicyVersion["origin"], by: string): PolicyVersion {
    this.#compiled.set(policy.hash, policy);
    return this.#storeText(policy.hash, policy.name, policy.loaded.source.text, origin, by);
  }

  #storeText(
    hash: string,
    name: string,
    text: string,
    origin: PolicyVersion["origin"],
    by: string,
  ): PolicyVersion {
    const existing = this.#manifest.versions.find((v) => v.hash === hash);
    if (existing) return existing;
    writeFileSync(this.#textFile(hash), text, { mode: 0o600 });
    const version: PolicyVersion = {
      hash,
      name,
      origin,
      createdAt: new Date().toISOString(),
      createdBy: by,
    };
    this.#manifest.versions.push(version);
    return version;
  }

  async #activate(policy: CompiledPolicy, action: PolicyChange["action"], by: string): Promise<PolicyChange> {
    const from = this.active.hash;
    this.#options.warden.setPolicy(policy);
    if (this.#manifest.stack.at(-1) !== policy.hash) this.#manifest.stack.push(policy.hash);
    this.#save();
    const change: PolicyChange = { action, from, to: policy.hash, by };
    this.#options.onChange?.("activated");
    await this.#audit(change);
    return change;
  }

  async #audit(change: PolicyChange): Promise<void> {
    const event: Omit<AuditEvent, "time"> = {
      kind: "policy",
      policy: change.to,
      reason: `policy ${change.action} by ${change.by}`,
      data: { ...change, name: this.active.name },
    };
    await this.#options.warden.appendAudit(event);
    this.#options.bus.emit({ type: "policy", action: change.action, from: change.from, to: change.to });
  }

  #textFile(hash: string): string {
    if (!/^[0-9a-f]{64}$/.test(hash))
      throw new ToolwardenError("version_unknown", `no policy version \`${hash}\``);
    return join(this.#options.dir, `${hash}.yaml`);
  }

  #save(): void {
    const tmp = `${this.#manifestFile}.tmp`;
    const stack = this.#manifest.stack.slice(-1000);
    writeFileSync(tmp, `${JSON.stringify({ ...this.#manifest, stack }, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, this.#manifestFile);
  }
}

function readManifest(file: string): Manifest {
  try {
    const parsed = JSON.parse(readFileSync(file, "utf8")) as Partial<Manifest>;
    return { versions: parsed.versions ?? [], stack: parsed.stack ?? [] };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { versions: [], stack: [] };
    throw new ToolwardenError(
      "versions_file",
      `cannot read policy versions \`${file}\`: ${(error as Error).message}`,
    );
  }
}
