import { Warden } from "../gateway/index.js";
import type { WardenOptions } from "../gateway/index.js";
import { CliError } from "./util.js";

/** Flags shared by the commands that decide calls. */
export const DECIDE_FLAGS = {
  policy: { type: "string", short: "p" },
  audit: { type: "string" },
  "audit-key-file": { type: "string" },
  /** The same as `--audit-key-file`, as `audit verify` spells it. */
  "key-file": { type: "string" },
  store: { type: "string" },
} as const;

/** The `--help` lines of the flags every deciding command shares. */
export const DECIDE_OPTIONS = [
  "-p, --policy FILE       the policy (YAML or JSON)",
  "--audit LOG             also write each decision to this JSONL audit log (it needs the audit key)",
  "--audit-key-file FILE   the audit HMAC key (also --key-file; or TOOLWARDEN_AUDIT_KEY / TOOLWARDEN_AUDIT_KEY_FILE)",
  "--store URL             sessions, limits and budgets in this state store (sqlite:FILE, redis://...)",
] as const;

/** Opens a Warden for a CLI command: the policy from `-p`, an audit log from `--audit`. */
export async function openWarden(values: {
  policy?: string;
  audit?: string;
  "audit-key-file"?: string;
  "key-file"?: string;
  store?: string;
}): Promise<Warden> {
  if (!values.policy) throw new CliError("no policy given: pass -p POLICY");
  const options: WardenOptions = {};
  if (values.store) {
    // Sessions, limits and budgets in a shared store: a replay continues the sessions it names.
    const { createStateStore } = await import("../stores/create.js");
    options.store = await createStateStore(values.store);
  }
  if (values.audit) {
    const { JsonlAuditSink } = await import("../audit/jsonl-sink.js");
    options.audit = await JsonlAuditSink.open({
      path: values.audit,
      keyFile: values["audit-key-file"] ?? values["key-file"],
    });
  }
  const warden = Warden.fromFile(values.policy, options);
  await warden.ready();
  return warden;
}
