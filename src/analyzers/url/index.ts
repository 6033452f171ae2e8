export { type AddressRisk, classifyAddress, parseAddress } from "./address.js";
export {
  createPinnedAgent,
  createPinnedHttpsAgent,
  createPinnedLookup,
  type PinnedOptions,
} from "./pinned-agent.js";
export { type UrlOptions, urlKind } from "./url-kind.js";
