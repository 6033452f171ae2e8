import { hasHiddenCharacters } from "../../analyzers/identity/index.js";

/** A tool as a server lists it (the fields toolwarden reads; the rest passes through untouched). */
export interface ListedTool {
  name: string;
  title?: string;
  description?: string;
  inputSchema?: unknown;
  [key: string]: unknown;
}

/** What a tool can do, read from its name and description. */
export type Capability = "exec" | "write" | "network" | "send";

export interface RiskFinding {
  code: string;
  message: string;
  /** `high` findings keep a tool from being pinned on first use. */
  severity: "high" | "medium" | "low";
}

export interface ToolRisk {
  capabilities: Capability[];
  findings: RiskFinding[];
  level: "high" | "medium" | "low" | "none";
  /** The hints the server publishes (`readOnlyHint`, `destructiveHint`, `openWorldHint`, `idempotentHint`). */
  annotations?: ToolAnnotations;
}

/** MCP tool annotations: hints from the server, untrusted like everything else it says. */
export interface ToolAnnotations {
  title?: string;
  readOnlyHint?: boolean;
  destructiveHint?: boolean;
  idempotentHint?: boolean;
  openWorldHint?: boolean;
}

/** A tool's annotations, if it lists any well-formed ones. */
export function annotationsOf(tool: ListedTool): ToolAnnotations | undefined {
  const raw = tool.annotations;
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return undefined;
  const out: ToolAnnotations = {};
  for (const key of ["readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"] as const) {
    const value = (raw as Record<string, unknown>)[key];
    if (typeof value === "boolean") out[key] = value;
  }
  const title = (raw as Record<string, unknown>).title;
  if (typeof title === "string") out.title = title;
  return Object.keys(out).length ? out : undefined;
}

/**
 * Phrases that speak to the model rather than describe the tool: the marks of tool poisoning
 * (MCPTox, Invariant Labs' "tool poisoning attacks"). Matched on normalised text.
 */
const INSTRUCTIONS: ReadonlyArray<[RegExp, string]> = [
  [
    /\b(ignore|disregard|forget|override)\b.{0,30}\b(previous|prior|above|earlier|other|all)\b.{0,20}\b(instructions?|rules?|prompts?|guidelines?)/,
    "tells the model to ignore its instructions",
  ],
  [
    /\b(do not|don't|never|without)\b.{0,20}\b(tell|telling|inform|informing|mention|mentioning|notify|notifying|reveal|revealing|show|showing|alert|alerting)\b.{0,15}\b(the )?user/,
    "tells the model to hide something from the user",
  ],
  [
    /<\s*\/?\s*(important|instructions?|system|secret|hidden)\s*>/,
    "contains a pseudo-tag addressed to the model",
  ],
  [
    /\b(before|after|instead of)\b.{0,20}\b(using|calling|invoking|running)\b.{0,30}\b(tool|function)\b.{0,60}\b(you must|must|always|first)\b/,
    "orders the model to do something around other tool calls",
  ],
  [
    /\b(pass|put|send|append|add|include)\b.{0,20}\b(its|the|their|this|that) (full |entire |whole )?(content|contents|text|output)\b.{0,20}\b(as|in|into|to)\b.{0,30}\b(parameter|argument|param|field|sidenote|note)\b/,
    "tells the model to smuggle content into an argument",
  ],
  [
    /\b(system prompt|conversation history|previous messages|chat history)\b/,
    "asks for the conversation or system prompt",
  ],
  [
    /\b(this is|it is) (very )?important\b.{0,40}\b(otherwise|or else|will (crash|fail|break))/,
    "pressures the model with a threat",
  ],
];

/** Common in honest descriptions too ("you must read the file first"): reported, but not enough to refuse a pin. */
const ORDERS = /\byou (must|have to)\b.{0,40}\b(read|send|pass|include|upload|forward)\b/;

const SENSITIVE =
  /(~\/\.ssh|\bid_(rsa|ed25519|ecdsa)\b|\.aws\/credentials|\.env\b|\bmcp\.json\b|claude_desktop_config|\.cursor\/|\bprivate key\b|\bapi[ _-]?keys?\b|\bpasswords?\b|\/etc\/(passwd|shadow))/;

/** Name tokens and description phrases that reveal a capability. */
const NAME_WORDS: Record<Capability, ReadonlySet<string>> = {
  exec: words(
    "exec execute run shell command cmd bash sh spawn eval script terminal subprocess python powershell sql",
  ),
  write: words(
    "write delete remove rm create update modify edit move rename overwrite insert drop put patch set save append mkdir commit push merge upload apply kill truncate replace",
  ),
  network: words("fetch http https url download browse navigate web curl scrape crawl"),
  send: words("send email mail webhook tweet publish reply upload sms slack"),
};
const DESCRIPTION_WORDS: ReadonlyArray<[Capability, RegExp]> = [
  ["exec", /\b(execut\w*|shell commands?|run (a |the |any )?(command|script|program|code)|arbitrary code)\b/],
  [
    "write",
    /\b(writes?|deletes?|removes?|overwrites?|modif(y|ies)|creates? (a |new )?(file|directory|record|issue)|moves? files?)\b/,
  ],
  ["network", /\b(fetch\w*|https?:\/\/|urls?|web ?pages?|downloads?|internet|http requests?)\b/],
  [
    "send",
    /\b(sends? (an? |the )?(e-?mails?|messages?|sms|texts?|tweets?|posts?)|e-?mails? (to|the)|publish(es|ing)? |webhooks?|uploads? (to|files?))\b/,
  ],
];

function words(list: string): ReadonlySet<string> {
  return new Set(list.split(" "));
}

/**
 * Reads a tool's name, description and input schema (every `description`/`title` inside it too,
 * where poisoning hides) for instructions to the model, invisible characters, sensitive paths,
 * and for what the tool can do (exec, write, network, send).
 */
export function assessTool(tool: ListedTool): ToolRisk {
  const findings: RiskFinding[] = [];
  const texts = [tool.title, tool.description, ...schemaTexts(tool.inputSchema)].filter(
    (t): t is string => typeof t === "string",
  );
  const hidden = texts.find(hasHiddenText);
  if (hidden !== undefined) {
    findings.push({
      code: "description.hidden_characters",
      message: "description contains invisible or bidi control characters",
      severity: "high",
    });
  }
  const plain = texts.map(normalise).join("\n");
  for (const [pattern, message] of INSTRUCTIONS) {
    if (pattern.test(plain))
      findings.push({
        code: "description.instructions",
        message: `description ${message}`,
        severity: "high",
      });
  }
  if (ORDERS.test(plain)) {
    findings.push({
      code: "description.orders",
      message: "description orders the model to read or send something",
      severity: "medium",
    });
  }
  const sensitive = SENSITIVE.exec(plain);
  if (sensitive) {
    findings.push({
      code: "description.sensitive",
      message: `description mentions \`${sensitive[0]}\``,
      severity: "high",
    });
  }
  if (hasHiddenCharacters(tool.name)) {
    findings.push({
      code: "name.hidden_characters",
      message: "tool name contains invisible or bidi control characters",
      severity: "high",
    });
  }
  const capabilities = capabilitiesOf(tool.name, plain);
  // Annotations only ever add risk: a server's hint that a tool is harmless is not believed over
  // its name and description (the spec says as much), but a hint that it is dangerous is taken.
  const annotations = annotationsOf(tool);
  if (annotations?.destructiveHint === true && !capabilities.includes("write")) capabilities.push("write");
  if (annotations?.openWorldHint === true && !capabilities.includes("network")) capabilities.push("network");
  if (
    annotations?.readOnlyHint === false &&
    annotations.destructiveHint !== false &&
    !capabilities.includes("write")
  )
    capabilities.push("write");
  if (
    annotations?.readOnlyHint === true &&
    capabilities.some((c) => c === "write" || c === "exec" || c === "send")
  ) {
    findings.push({
      code: "annotation.contradicts",
      message: `annotated read-only, but its name or description says it ${capabilities
        .filter((c) => c === "write" || c === "exec" || c === "send")
        .map((c) => CAPABILITY_VERB[c])
        .join(" and ")}`,
      severity: "medium",
    });
  }
  if (annotations?.destructiveHint === true)
    findings.push({
      code: "annotation.destructive",
      message: "annotated destructive (destructiveHint)",
      severity: "medium",
    });
  capabilities.sort((a, b) => CAPABILITY_ORDER.indexOf(a) - CAPABILITY_ORDER.indexOf(b));
  for (const capability of capabilities) {
    findings.push({
      code: `capability.${capability}`,
      message: CAPABILITY_TEXT[capability],
      severity: capability === "exec" || capability === "send" ? "medium" : "low",
    });
  }
  const level = findings.some((f) => f.severity === "high")
    ? "high"
    : findings.some((f) => f.severity === "medium")
      ? "medium"
      : findings.length
        ? "low"
        : "none";
  return annotations ? { capabilities, findings, level, annotations } : { capabilities, findings, level };
}

const CAPABILITY_ORDER: readonly Capability[] = ["exec", "write", "network", "send"];
const CAPABILITY_VERB: Record<Capability, string> = {
  exec: "runs commands",
  write: "writes",
  network: "reaches the network",
  send: "sends",
};

const CAPABILITY_TEXT: Record<Capability, string> = {
  exec: "can execute commands or code",
  write: "can change or delete data",
  network: "reaches the network",
  send: "sends data out (email, messages, posts)",
};

function capabilitiesOf(name: string, description: string): Capability[] {
  const tokens = name
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
  const found: Capability[] = [];
  for (const capability of ["exec", "write", "network", "send"] as const) {
    const words = NAME_WORDS[capability];
    const byName = tokens.some((token) => words.has(token));
    const byText = DESCRIPTION_WORDS.some(([c, pattern]) => c === capability && pattern.test(description));
    if (byName || byText) found.push(capability);
  }
  return found;
}

/** Tabs and newlines are ordinary in descriptions; every other control or format character is not. */
function hasHiddenText(text: string): boolean {
  return hasHiddenCharacters(text.replace(/[\t\n\r]/g, " "));
}

function normalise(text: string): string {
  return text.normalize("NFKC").toLowerCase().replace(/\s+/g, " ");
}

/** `title` and `description` strings anywhere in a JSON Schema (bounded: schemas come from the server). */
function schemaTexts(schema: unknown): string[] {
  const out: string[] = [];
  const walk = (value: unknown, depth: number) => {
    if (out.length > 500 || depth > 12 || value === null || typeof value !== "object") return;
    if (Array.isArray(value)) {
      for (const item of value) walk(item, depth + 1);
      return;
    }
    for (const [key, item] of Object.entries(value)) {
      if ((key === "description" || key === "title") && typeof item === "string") out.push(item);
      else walk(item, depth + 1);
    }
  };
  walk(schema, 0);
  return out;
}
