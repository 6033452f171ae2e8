// biome-ignore-all lint/suspicious/noTemplateCurlyInString: configs spell `${VAR}` placeholders literally
import { describe, expect, it } from "vitest";
import { formatIssue, PolicyLoadError } from "../../core/index.js";
import { parseGatewayConfig } from "./gateway-config.js";

const TOKEN = "t0ken-for-alice-0123456789";

function errors(text: string, env: Record<string, string> = {}): string[] {
  try {
    parseGatewayConfig("gw.yaml", text, env);
  } catch (error) {
    if (error instanceof PolicyLoadError)
      return error.issues.map((issue) => `${formatIssue(issue)}${issue.help ? ` (${issue.help})` : ""}`);
    throw error;
  }
  return [];
}

describe("parseGatewayConfig", () => {
  it("reads a full config: paths against the file, ${VAR} from the environment, tokens from env", () => {
    const config = parseGatewayConfig(
      "/etc/tw/gw.yaml",
      `listen: { port: 0 }
policy: ./policy.yaml
audit: logs/audit.jsonl
servers:
  fs: { command: npx, args: ["-y", "pkg", "\${ROOT}"], cwd: work }
  gh: { url: "https://mcp.example/mcp", headers: { Authorization: "Bearer \${GH}" } }
tokens:
  - { token: ${TOKEN}, agent: { id: alice, role: admin } }
  - { env: BOB_TOKEN, agent: { id: bob } }
`,
      { ROOT: "/data", GH: "gh-secret", BOB_TOKEN: "bob-token-0123456789" },
    );
    expect(config).toMatchObject({
      host: "127.0.0.1",
      port: 0,
      path: "/mcp",
      policy: "/etc/tw/policy.yaml",
      audit: "/etc/tw/logs/audit.jsonl",
      pins: "/etc/tw/.toolwarden/pins.jsonl",
      servers: {
        fs: { command: "npx", args: ["-y", "pkg", "/data"], cwd: "/etc/tw/work" },
        gh: { url: "https://mcp.example/mcp", headers: { Authorization: "Bearer gh-secret" } },
      },
      tokens: [
        { token: TOKEN, agent: { id: "alice", role: "admin" } },
        { token: "bob-token-0123456789", agent: { id: "bob" } },
      ],
    });
  });

  it("points at every problem with file:line:col", () => {
    expect(
      errors(`policy: p.yaml
listn: { port: 1 }
servers:
  a__b: { command: x }
  both: { command: x, url: "http://h/mcp" }
  web: { url: "http://h/mcp", args: [x] }
  none: {}
tokens:
  - { token: short, agent: { id: a } }
  - { agent: { id: b } }
  - { token: ${TOKEN}, agent: { role: x } }
`),
    ).toMatchInlineSnapshot(`
      [
        "gw.yaml:4:3: \`servers.a__b\`: a server id is letters, digits, \`-\` and single \`_\`",
        "gw.yaml:5:9: \`servers.both\`: a server needs exactly one of \`command\` (stdio) or \`url\` (Streamable HTTP)",
        "gw.yaml:6:37: \`servers.web.args\`: \`args\` applies only to \`command\` servers",
        "gw.yaml:7:9: \`servers.none\`: a server needs exactly one of \`command\` (stdio) or \`url\` (Streamable HTTP)",
        "gw.yaml:9:14: \`tokens.0.token\`: a token needs at least 16 characters",
        "gw.yaml:10:5: \`tokens.1\`: a token needs exactly one of \`token\` (the secret) or \`env\` (the variable that holds it)",
        "gw.yaml:11:49: \`tokens.2.agent.id\`: expected string, received undefined",
        "gw.yaml:2:1: unknown key \`listn\` (did you mean \`listen\`?)",
      ]
    `);
  });

  it("reports unset variables and repeated tokens where they are written", () => {
    expect(
      errors(`policy: p.yaml
servers:
  gh: { url: "https://h/mcp", headers: { Authorization: "Bearer \${GH}" } }
tokens:
  - { env: MISSING, agent: { id: a } }
  - { token: ${TOKEN}, agent: { id: b } }
  - { token: ${TOKEN}, agent: { id: c } }
`),
    ).toMatchInlineSnapshot(`
      [
        "gw.yaml:3:57: environment variable \`GH\` is not set",
        "gw.yaml:5:12: environment variable \`MISSING\` is not set",
        "gw.yaml:7:5: token 3 repeats token 2: each token names one agent",
      ]
    `);
  });

  it("reports YAML syntax errors with positions", () => {
    expect(errors("policy: [unclosed\n")[0]).toMatch(/^gw\.yaml:\d+:\d+: invalid YAML/);
  });
});
