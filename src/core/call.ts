/** The agent making a call. `id` names it; any other attribute is usable in `agent.<attr>` conditions. */
export interface Agent {
  id?: string;
  [attribute: string]: unknown;
}

/** One tool call as an adapter hands it to the monitor. */
export interface Call {
  tool: string;
  args?: Record<string, unknown>;
  /** The MCP server (or other upstream) the tool belongs to. */
  server?: string;
  agent?: Agent;
  /** Session id; calls with the same id share labels, counters and spend. */
  session?: string;
  /** Spend this call will incur; overrides the tool's declared `cost`. */
  cost?: number;
  /** Labels the host attaches to argument values it passes in (exact propagation). */
  labels?: Record<string, string[]>;
}
