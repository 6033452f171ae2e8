export { compileDenyGlobs, type PathOptions, pathKind } from "./path-kind.js";
