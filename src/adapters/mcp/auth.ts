import { createHash, timingSafeEqual } from "node:crypto";
import type { Agent } from "../../core/index.js";

/** The agent a bearer token stands for; `index` identifies the token (sessions are bound to it). */
export interface TokenMatch {
  index: number;
  agent: Agent;
}

/**
 * Bearer tokens and the agents they stand for. A presented token is hashed (so lengths do not
 * leak) and compared with every configured token in constant time, without stopping at a match.
 */
export class TokenTable {
  private readonly entries: Array<{ digest: Buffer; agent: Agent }>;

  constructor(tokens: ReadonlyArray<{ token: string; agent: Agent }>) {
    this.entries = tokens.map(({ token, agent }) => ({ digest: digest(token), agent }));
  }

  /** The agent for an `Authorization` header value, or undefined (no header, not Bearer, unknown token). */
  match(header: string | undefined): TokenMatch | undefined {
    const presented = /^Bearer[ \t]+([^\s]+)[ \t]*$/i.exec(header ?? "")?.[1];
    if (presented === undefined) return undefined;
    const candidate = digest(presented);
    let found: TokenMatch | undefined;
    this.entries.forEach((entry, index) => {
      if (timingSafeEqual(candidate, entry.digest) && found === undefined)
        found = { index, agent: entry.agent };
    });
    return found;
  }
}

function digest(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}
