export { approveTools } from "./approve.js";
export type { ApproveResult } from "./approve.js";
export { TokenTable } from "./auth.js";
export type { TokenMatch } from "./auth.js";
export { ToolCatalog } from "./catalog.js";
export {
  ClientConfigError,
  defaultConfigLocations,
  existingConfigLocations,
  readClientConfig,
} from "./client-configs.js";
export type { ConfigLocation, ConfiguredServer } from "./client-configs.js";
export { DECISION_META_KEY, refusal, ToolGate } from "./gate.js";
export type { CallContext, GateOptions } from "./gate.js";
export { McpGateway, TOOL_SEPARATOR } from "./gateway.js";
export type { GatewayOptions } from "./gateway.js";
export {
  gatewayConfigSchema,
  loadGatewayConfig,
  MIN_TOKEN_LENGTH,
  parseGatewayConfig,
} from "./gateway-config.js";
export type { GatewayConfig } from "./gateway-config.js";
export { reviewTools } from "./pin-check.js";
export type { PinEvent, PinRules, PinStatus } from "./pin-check.js";
export {
  DEFAULT_PINS_PATH,
  defaultPinsPath,
  fingerprintChanges,
  fingerprintTool,
  PinLedger,
  PinLedgerError,
} from "./pins.js";
export type { PinEntry, PinLedgerOptions, ToolFingerprint } from "./pins.js";
export { McpProxy } from "./proxy.js";
export { NotificationPump } from "./pump.js";
export type { PumpOptions, PumpStats } from "./pump.js";
export { ChildProcessTransport, DEFAULT_MAX_LINE, LineTransport, parseByteSize } from "./stdio.js";
export type { ChildOptions, LineTransportOptions } from "./stdio.js";
export type { ProxyOptions } from "./proxy.js";
export { assessTool } from "./risk.js";
export type { Capability, ListedTool, RiskFinding, ToolRisk } from "./risk.js";
export { scanServers, starterPolicy } from "./scan.js";
export type { ScannedServer, ScannedTool, ScanOptions, ScanProgress } from "./scan.js";
export { connectUpstream, inheritedEnv } from "./upstream.js";
export type { HttpUpstream, StdioUpstream, UpstreamSpec } from "./upstream.js";
