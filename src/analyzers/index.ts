import { enumKind, maxLengthKind, rangeKind, regexKind } from "./basic.js";
import type { ConstraintKind, Detector } from "./kind.js";
import { pathKind } from "./path/index.js";
import { secretsDetector } from "./secrets/index.js";
import { shellKind } from "./shell/index.js";
import { sqlKind } from "./sql/index.js";
import { urlKind } from "./url/index.js";

export { compileLinearRegex } from "./basic.js";
export { compileShadowCheck } from "./identity/index.js";
export type { ArgCheck, AsyncArgCheck, ConstraintKind, Detector } from "./kind.js";

/** Every constraint kind usable under `tools.<tool>.args.<arg>`, by key. */
export const CONSTRAINT_KINDS: ReadonlyMap<string, ConstraintKind> = new Map<string, ConstraintKind>(
  [
    enumKind,
    regexKind,
    maxLengthKind,
    rangeKind,
    urlKind,
    pathKind,
    sqlKind,
    shellKind,
    // analyzers: one line each
  ].map((kind) => [kind.kind, kind]),
);

/** Every detector usable under `detect:`, by key. */
export const DETECTORS: ReadonlyMap<string, Detector> = new Map<string, Detector>(
  [
    secretsDetector,
    // detectors: one line each
  ].map((detector: Detector) => [detector.name, detector]),
);
