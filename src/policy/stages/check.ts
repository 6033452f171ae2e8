import { PolicyLoadError } from "../../core/index.js";
import type { CompileState } from "./state.js";

/** Throws every problem found so far, sorted by file and position: a policy with any never loads. */
export function checkStage(state: CompileState): void {
  state.needs.onFrom = undefined;
  const { issues } = state;
  if (!issues.length) return;
  issues.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col);
  throw new PolicyLoadError(issues);
}
