import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
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
import type { StateStore } from "../stores/types.js";
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
  /** `sync`: another replica changed the version active in the shared store, and this one followed. */
  action: "activate" | "rollback" | "reload" | "start" | "sync";
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
  /** Operational lines (a version shared by another replica that cannot be loaded here). */
  log?: (line: string) => void;
}

/** The shared manifest's record in the state store; each text is `policy-text:<hash>`. */
const VERSIONS_RECORD = "policy-versions";
const TEXT_RECORD = "policy-text:";
/** Activations remembered for rollback. */
const STACK_KEPT = 1000;

/**
 * Every policy the server has run, by hash: the watched file's versions and admin uploads. Activation
 * swaps the Warden's policy atomically and audits both hashes; rollback returns to the version that
 * was active before. Changes are serialized.
 *
 * After `share(store)`, the manifest (versions and activation history, whose top is the active
 * version) lives in the state store, written by compare-and-set, and each text in a record of its
 * own, written before the manifest names it; the data dir keeps a copy. Every replica on the store
 * then runs the same version: a change made on one is followed by the others at their next
 * `refresh` (serve: every second), and a restart keeps the version active in the store.
 */
export class PolicyManager {
  readonly file: string;
  readonly #options: PolicyManagerOptions;
  readonly #compiled = new Map<string, CompiledPolicy>();
  #manifest: Manifest;
  /** The store the versions are shared through, once `share` ran; `version` is the manifest record's. */
  #shared: { store: StateStore; version: number; rejected?: string; down?: boolean } | undefined;
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
    if (!version || !existsSync(this.#textFile(hash))) return undefined;
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

  /**
   * Shares the versions through the state store (call before `start`): this data dir's versions
   * join the store's, and the store's history wins when it has one. Throws when the store cannot
   * be read; the versions then stay in the data dir.
   */
  share(store: StateStore): Promise<void> {
    return this.#serial(async () => {
      const local = this.#manifest;
      this.#shared = { store, version: -1 };
      try {
        await this.#commit(async (m) => {
          const before = m.versions.length;
          for (const version of local.versions) {
            if (m.versions.some((v) => v.hash === version.hash) || !existsSync(this.#textFile(version.hash)))
              continue;
            await this.#putText(version.hash, readFileSync(this.#textFile(version.hash), "utf8"));
            m.versions.push(version);
          }
          if (m.stack.length === 0 && local.stack.length) m.stack = [...local.stack];
          else if (m.versions.length === before) return false;
        });
      } catch (error) {
        this.#shared = undefined;
        this.#manifest = local;
        this.#save();
        throw error;
      }
    });
  }

  /**
   * Follows the version active in the shared store, if another replica changed it: loads it,
   * swaps it in and audits a `sync`. Does nothing unshared; keeps the current policy when the
   * store does not answer or the version cannot be loaded here (logged once).
   */
  refresh(): Promise<void> {
    const shared = this.#shared;
    if (!shared) return Promise.resolve();
    return this.#serial(async () => {
      try {
        await this.#pull();
        if (shared.down) this.#options.log?.("policy versions: the state store answers again");
        shared.down = false;
      } catch (error) {
        if (!shared.down)
          this.#options.log?.(`policy versions: cannot read the state store: ${(error as Error).message}`);
        shared.down = true;
        return;
      }
      const top = this.#manifest.stack.at(-1);
      if (!top || top === this.active.hash || top === shared.rejected) return;
      let policy: CompiledPolicy;
      try {
        policy = await this.#loadAsync(top);
      } catch (error) {
        shared.rejected = top;
        this.#options.log?.(
          `policy versions: version \`${top.slice(0, 12)}\` is active in the store but cannot be loaded here; keeping \`${this.active.hash.slice(0, 12)}\`: ${(error as Error).message}`,
        );
        return;
      }
      const change: PolicyChange = { action: "sync", from: this.active.hash, to: policy.hash, by: "store" };
      this.#options.warden.setPolicy(policy);
      this.#options.onChange?.("activated");
      await this.#audit(change);
    });
  }

  /**
   * Records the policy the server started with (the file) and audits the start. Sharing a store,
   * a file the store already knows keeps the version active there (an upload, a rollback made on
   * any replica, before a restart); a file it does not know is a new deploy and becomes active.
   */
  start(): Promise<PolicyChange> {
    return this.#serial(async () => {
      const file = this.active;
      let from = file.hash;
      let to = file;
      await this.#commit(async (m) => {
        const known = m.versions.some((v) => v.hash === file.hash);
        await this.#addVersion(m, textOf(file, "file", "server"));
        const top = m.stack.at(-1);
        from = top ?? file.hash;
        to = file;
        if (this.#shared && known && top && top !== file.hash) {
          try {
            to = await this.#loadAsync(top);
          } catch (error) {
            this.#options.log?.(
              `policy versions: the active version \`${top.slice(0, 12)}\` cannot be loaded here; starting with the policy file: ${(error as Error).message}`,
            );
          }
        }
        if (top === to.hash) return;
        m.stack.push(to.hash);
      });
      if (to !== file) this.#options.warden.setPolicy(to);
      const change: PolicyChange = { action: "start", from, to: to.hash, by: "server" };
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
      return this.#serial(async () => ({
        version: await this.#storeText({ hash, name, text: source, origin: "upload", by }),
      }));
    }
    const policy = await this.compileUploadAsync(source);
    return this.#serial(async () => {
      const version = await this.#store(policy, "upload", by);
      return { version, change: await this.#activate(policy, "activate", by) };
    });
  }

  /** Activates a stored version; throws `ToolwardenError` (`version_unknown`, `version_changed`). */
  activate(hash: string, by: string): Promise<PolicyChange> {
    return this.#serial(async () => {
      // A version uploaded on another replica a moment ago is known here too.
      if (this.#shared && !this.#manifest.versions.some((v) => v.hash === hash)) await this.#pull();
      return this.#activate(await this.#loadAsync(hash), "activate", by);
    });
  }

  /** Goes back to the version active before the current one; throws `ToolwardenError` (`no_rollback`). */
  rollback(by: string): Promise<PolicyChange> {
    return this.#serial(async () => {
      let previous: CompiledPolicy | undefined;
      // The top of the history is the active version (the shared one, when this replica lags).
      await this.#commit(async (m) => {
        const current = m.stack.at(-1) ?? this.active.hash;
        while (m.stack.length && m.stack.at(-1) === current) m.stack.pop();
        const hash = m.stack.at(-1);
        if (!hash) throw new ToolwardenError("no_rollback", "there is no earlier version to roll back to");
        previous = await this.#loadAsync(hash);
      });
      const policy = previous as CompiledPolicy;
      const change: PolicyChange = { action: "rollback", from: this.active.hash, to: policy.hash, by };
      this.#options.warden.setPolicy(policy);
      this.#options.onChange?.("activated");
      await this.#audit(change);
      return change;
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
      await this.#store(policy, "file", "file-watch");
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

  #store(policy: CompiledPolicy, origin: PolicyVersion["origin"], by: string): Promise<PolicyVersion> {
    this.#compiled.set(policy.hash, policy);
    return this.#storeText(textOf(policy, origin, by));
  }

  async #storeText(added: NewVersion): Promise<PolicyVersion> {
    let version: PolicyVersion | undefined;
    await this.#commit(async (m) => {
      const known = m.versions.some((v) => v.hash === added.hash);
      version = await this.#addVersion(m, added);
      if (known) return false;
    });
    return version as PolicyVersion;
  }

  /** Adds a version to `m` unless it is there (text first: here, and in the store when shared). */
  async #addVersion(m: Manifest, { hash, name, text, origin, by }: NewVersion): Promise<PolicyVersion> {
    const existing = m.versions.find((v) => v.hash === hash);
    if (existing) return existing;
    writeFileSync(this.#textFile(hash), text, { mode: 0o600 });
    await this.#putText(hash, text);
    const version: PolicyVersion = { hash, name, origin, createdAt: new Date().toISOString(), createdBy: by };
    m.versions.push(version);
    return version;
  }

  async #activate(policy: CompiledPolicy, action: PolicyChange["action"], by: string): Promise<PolicyChange> {
    const from = this.active.hash;
    await this.#commit((m) => {
      if (m.stack.at(-1) === policy.hash) return false;
      m.stack.push(policy.hash);
    });
    this.#options.warden.setPolicy(policy);
    const change: PolicyChange = { action, from, to: policy.hash, by };
    this.#options.onChange?.("activated");
    await this.#audit(change);
    return change;
  }

  /**
   * Applies `change` to a copy of the manifest and keeps it (unless `change` returns false): in
   * the data dir, or, shared, by compare-and-set of the store's record, read afresh and retried
   * when another replica wrote it meanwhile. A throw from `change` changes nothing.
   */
  async #commit(change: (m: Manifest) => unknown): Promise<void> {
    const shared = this.#shared;
    if (!shared) {
      const m = copyManifest(this.#manifest);
      if ((await change(m)) === false) return;
      this.#manifest = m;
      this.#save();
      return;
    }
    for (let attempt = 0; attempt < 16; attempt++) {
      const version = await this.#pull();
      const m = copyManifest(this.#manifest);
      if ((await change(m)) === false) return;
      m.stack = m.stack.slice(-STACK_KEPT);
      if (await shared.store.putRecord(VERSIONS_RECORD, JSON.stringify(m), version, null, Date.now())) {
        this.#manifest = m;
        shared.version = version + 1;
        this.#save();
        return;
      }
    }
    throw new ToolwardenError(
      "versions_busy",
      "the shared policy versions changed concurrently too often; try again",
    );
  }

  /** Reads the shared manifest and adopts it if it changed (texts this data dir lacks are fetched first); returns its version. */
  async #pull(): Promise<number> {
    const shared = this.#shared!;
    const record = await shared.store.getRecord(VERSIONS_RECORD, Date.now());
    const version = record?.version ?? 0;
    if (version === shared.version) return version;
    const m = record ? parseManifest(record.value, VERSIONS_RECORD) : { versions: [], stack: [] };
    for (const v of m.versions) {
      const file = this.#textFile(v.hash);
      if (existsSync(file)) continue;
      const text = await shared.store.getRecord(`${TEXT_RECORD}${v.hash}`, Date.now());
      if (text) writeFileSync(file, text.value, { mode: 0o600 });
    }
    this.#manifest = m;
    shared.version = version;
    this.#save();
    return version;
  }

  async #putText(hash: string, text: string): Promise<void> {
    // Content-addressed and never changed: "already there" is as good as written.
    await this.#shared?.store.putRecord(`${TEXT_RECORD}${hash}`, text, 0, null, Date.now());
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
    const stack = this.#manifest.stack.slice(-STACK_KEPT);
    writeFileSync(tmp, `${JSON.stringify({ ...this.#manifest, stack }, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, this.#manifestFile);
  }
}

function readManifest(file: string): Manifest {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { versions: [], stack: [] };
    throw new ToolwardenError(
      "versions_file",
      `cannot read policy versions \`${file}\`: ${(error as Error).message}`,
    );
  }
  return parseManifest(text, file);
}

function parseManifest(text: string, where: string): Manifest {
  try {
    const parsed = JSON.parse(text) as Partial<Manifest>;
    return {
      versions: Array.isArray(parsed.versions) ? parsed.versions : [],
      stack: Array.isArray(parsed.stack) ? parsed.stack : [],
    };
  } catch (error) {
    throw new ToolwardenError(
      "versions_file",
      `cannot read policy versions \`${where}\`: ${(error as Error).message}`,
    );
  }
}

/** A version to store: its text and who made it. */
interface NewVersion {
  hash: string;
  name: string;
  text: string;
  origin: PolicyVersion["origin"];
  by: string;
}

function textOf(policy: CompiledPolicy, origin: PolicyVersion["origin"], by: string): NewVersion {
  return { hash: policy.hash, name: policy.name, text: policy.loaded.source.text, origin, by };
}

function copyManifest(m: Manifest): Manifest {
  return { versions: [...m.versions], stack: [...m.stack] };
}
