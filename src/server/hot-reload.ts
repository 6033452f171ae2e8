import { type FSWatcher, watch } from "node:fs";
import { basename, dirname } from "node:path";
import type { PolicyManager } from "./policy-versions.js";

export interface PolicyWatcher {
  close(): void;
}

/**
 * Watches the policy file and every file it extends and reloads on change. It watches the folders,
 * not the files: editors save by writing a new file and renaming it over the old one, which ends
 * a watch on the file itself. Events are debounced; the reload itself compares hashes, so a
 * spurious event changes nothing.
 */
export function watchPolicy(
  manager: PolicyManager,
  options: { debounceMs?: number; log?: (line: string) => void } = {},
): PolicyWatcher {
  const debounce = options.debounceMs ?? 150;
  let watchers: FSWatcher[] = [];
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const arm = () => {
    for (const w of watchers) w.close();
    watchers = [];
    const byDir = new Map<string, Set<string>>();
    for (const file of manager.sourceFiles()) {
      const names = byDir.get(dirname(file)) ?? new Set<string>();
      names.add(basename(file));
      byDir.set(dirname(file), names);
    }
    for (const [dir, names] of byDir) {
      try {
        const watcher = watch(dir, (_event, name) => {
          if (name === null || names.has(String(name))) schedule();
        });
        watcher.on("error", () => {});
        watchers.push(watcher);
      } catch (error) {
        options.log?.(`cannot watch \`${dir}\`: ${(error as Error).message}`);
      }
    }
  };

  const schedule = () => {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(reload, debounce);
  };

  const reload = async () => {
    const outcome = await manager.reloadFile().catch((error: Error) => {
      options.log?.(`policy reload failed: ${error.message}`);
      return undefined;
    });
    if (!outcome || closed) return;
    if (outcome.result === "activated" && outcome.change) {
      options.log?.(
        `policy reloaded: ${outcome.change.from.slice(0, 12)} -> ${outcome.change.to.slice(0, 12)}`,
      );
      arm();
    } else if (outcome.result === "rejected") {
      const first = outcome.issues?.[0];
      options.log?.(
        `policy file rejected, keeping ${manager.active.hash.slice(0, 12)}: ${first ? `${first.file}:${first.line}:${first.col}: ${first.message}` : "invalid"}`,
      );
    }
  };

  arm();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      for (const w of watchers) w.close();
    },
  };
}
