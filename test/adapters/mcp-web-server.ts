/** A real MCP server over stdio with one tool, `web_fetch`, returning the scripted untrusted page. */
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { z } from "zod";
import { UNTRUSTED_PAGE } from "./script.js";

const server = new McpServer({ name: "web", version: "1.0.0" });
server.registerTool(
  "web_fetch",
  { description: "Fetch a web page", inputSchema: { url: z.string() } },
  async () => ({
    content: [{ type: "text", text: UNTRUSTED_PAGE }],
  }),
);
await server.connect(new StdioServerTransport());
