import { describe, expect, it } from "vitest";
import * as mcp from "./index.js";

describe("toolwarden/mcp public surface", () => {
  it("exports exactly these names", () => {
    expect(Object.keys(mcp).sort()).toMatchInlineSnapshot(`
      [
        "ClientConfigError",
        "DECISION_META_KEY",
        "DEFAULT_PINS_PATH",
        "MIN_TOKEN_LENGTH",
        "McpGateway",
        "McpProxy",
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
        "existingConfigLocations",
        "fingerprintChanges",
        "fingerprintTool",
        "gatewayConfigSchema",
        "inheritedEnv",
        "loadGatewayConfig",
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
