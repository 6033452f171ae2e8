export { base62Checksum } from "./checksum.js";
export {
  maskSecrets,
  SECRET_TYPES,
  scanSecrets,
  scanSecretsIn,
  secretsDetector,
  secretsOptions,
} from "./detector.js";
export type { SecretType } from "./detector.js";
