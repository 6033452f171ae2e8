import { ToolwardenError } from "../core/index.js";

/** A signing sink has no key, or the key is unusable. Code `audit_key`. */
export class AuditKeyError extends ToolwardenError {
  /** The message as the CLI says it (its flags, not the library's options), when it differs. */
  readonly cliHelp?: string;
  constructor(message: string, options?: { cliHelp?: string }) {
    super("audit_key", message);
    this.cliHelp = options?.cliHelp;
  }
}

/** A sink cannot keep records: closed, locked by another writer, broken disk or unreachable server. Code `audit_sink`. */
export class AuditSinkError extends ToolwardenError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("audit_sink", message, options);
  }
}
