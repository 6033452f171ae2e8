import { dirname } from "node:path";
import { engineValue, POLICY_ENGINES } from "../engines.js";
import type { LoadedPolicy } from "../load.js";
import { issueAtPath } from "../source.js";
import type { PolicySource } from "../source.js";
import type { CompileState } from "./state.js";

/** The registered engines (`engine: { cedar }`, `judge:`) compile their keys; their issues join the rest. */
export function enginesStage(state: CompileState): void {
  const { policy, loaded } = state;
  for (const engine of POLICY_ENGINES.values()) {
    const raw = engineValue(policy, engine.key);
    if (raw === undefined) continue;
    const top = engine.key.split(".")[0];
    const source = sourceOf(loaded, top, engineValue(policy, top));
    const compiled = engine.compile(raw, {
      source,
      baseDir: source.file.startsWith("<") ? process.cwd() : dirname(source.file),
      failOpen: policy.fail === "open",
      issue: (path, message) => issueAtPath(source, [...engine.key.split("."), ...path], message),
    });
    state.issues.push(...(compiled.issues ?? []));
    if (compiled.check) state.engines.push(compiled.check);
    Object.assign(state.engineFields, compiled.fields);
  }
}

/** The file that declared a merged top-level key (for paths relative to it): the root, or the base it came from. */
function sourceOf(loaded: LoadedPolicy, key: string, value: unknown): PolicySource {
  const wanted = JSON.stringify(value);
  for (const source of loaded.sources) {
    const own = (source.doc.toJS({ maxAliasCount: 100 }) as Record<string, unknown> | null)?.[key];
    if (own !== undefined && JSON.stringify(own) === wanted) return source;
  }
  return loaded.source;
}
