export { compileShadowCheck, hasHiddenCharacters } from "./shadow.js";
