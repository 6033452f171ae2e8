import { Warden } from "../gateway/index.js";
import type { WardenOptions } from "../gateway/index.js";
import { CliError } from "./util.js";

/** Flags shared by the commands that decide calls. */
export const DECIDE_FLAGS = {
  policy: { type: "string", short: "p" },
  audit: { type: "string" },
  "audit-key-file": { type: "string" },
} as const;

/** Opens a Warden for a CLI command: the policy from `-p`, an audit log from `--audit`. */
export async function openWarden(values: {
  policy?: string;
  audit?: string;
  "audit-key-file"?: string;
}): Promise<Warden> {
  if (!values.policy) throw new CliError("no policy given: pass -p POLICY");
  const options: WardenOptions = {};
  if (values.audit) {
    const { JsonlAuditSink } = await import("../audit/jsonl-sink.js");
    options.audit = await JsonlAuditSink.open({ path: values.audit, keyFile: values["audit-key-file"] });
  }
  const warden = Warden.fromFile(values.policy, options);
  await warden.ready();
  return warden;
}
