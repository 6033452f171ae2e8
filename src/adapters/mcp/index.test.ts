import { describe, expect, it } from "vitest";
import * as mcp from "./index.js";

describe("toolwarden/mcp public surface", () => {
  it("exports exactly these names", () => {
    expect(Object.keys(mcp).sort()).toMatchInlineSnapshot(`
      [
        "ChildProcessTransport",
        "ClientConfigError",
        "DECISION_META_KEY",
        "DEFAULT_MAX_LINE",
        "DEFAULT_PINS_PATH",
        "LineTransport",
        "MIN_TOKEN_LENGTH",
        "McpGateway",
        "McpProxy",
        "NotificationPump",
        "PinLedger",
        "PinLedgerError",
        "TOOL_SEPARATOR",
        "TokenTable",
        "ToolCatalog",
        "ToolGate",
        "approveTools",
        "assessTool",
        "connectUpstream",
        "defaultConfigLocations",
        "defaultPinsPath",
        "existingConfigLocations",
        "fingerprintChanges",
        "fingerprintTool",
        "gatewayConfigSchema",
        "inheritedEnv",
        "loadGatewayConfig",
        "parseByteSize",
        "parseGatewayConfig",
        "readClientConfig",
        "refusal",
        "reviewTools",
        "scanServers",
        "starterPolicy",
      ]
    `);
  });
});
