export { shellKind, shellOptions } from "./shell-kind.js";
export type { ShellOptions } from "./shell-kind.js";
