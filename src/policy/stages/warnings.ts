import { issueAtPath } from "../source.js";
import type { CompileState } from "./state.js";
import { originOf } from "./state.js";

/**
 * Declarations that load but may not say what their author means: a tool with `fields` and no
 * `produces` (the parts no field names carry no label, and are trusted values for `from`), and a
 * `from` source whose outputs are labelled (none of its values is ever trusted).
 */
export function warningsStage(state: CompileState): void {
  const { policy, loaded, fromSites } = state;
  const { origins } = loaded;
  const out = state.warnings;
  const tools = policy.tools ?? {};
  for (const [name, decl] of Object.entries(tools)) {
    if (!decl.fields || decl.produces !== undefined) continue;
    const origin = originOf(state, origins.tools.get(name), ["tools", name]);
    out.push(
      issueAtPath(
        origin.source,
        [...origin.path, "fields"],
        `tool \`${name}\` has \`fields\` and no \`produces\``,
        {
          atKey: true,
          help: "the parts no field names carry no label and are trusted values for `from`; say so with `produces: []`, or label the rest",
        },
      ),
    );
  }
  const warned = new Set<string>();
  for (const { source, origin, at } of fromSites) {
    const decl = Object.hasOwn(tools, source) ? tools[source] : undefined;
    const labels = [
      ...(decl?.produces ?? []),
      ...Object.values(policy.servers ?? {}).flatMap((s) => s.tools?.[source]?.produces ?? []),
    ];
    if (!labels.length || warned.has(source)) continue;
    warned.add(source);
    out.push(
      issueAtPath(
        origin.source,
        [...origin.path, ...at],
        `trusted value source \`${source}\` produces labels (${[...new Set(labels)].join(", ")}): none of its values is trusted`,
        {
          help: "a value in a labelled output never vouches for an argument (`from`, `unless: [tool:...]`); label its untrusted parts with `fields` instead",
        },
      ),
    );
  }
}
