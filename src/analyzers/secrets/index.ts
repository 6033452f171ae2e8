export { base62Checksum } from "./checksum.js";
export { SECRET_TYPES, scanSecrets, secretsDetector } from "./detector.js";
export type { SecretType } from "./detector.js";
