import { relative } from "node:path";
import { describe, expect, it } from "vitest";
import { importsOf, SRC, sourceFiles } from "./graph.js";

/** The cycles of the graph, one per strongly connected component with more than one file (or a self-import). */
function cycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const indices = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (node: string) => {
    indices.set(node, index);
    low.set(node, index);
    index++;
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!indices.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) low.set(node, Math.min(low.get(node)!, indices.get(next)!));
    }
    if (low.get(node) === indices.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1 || graph.get(node)?.includes(node)) found.push(component.sort());
    }
  };
  for (const node of graph.keys()) if (!indices.has(node)) visit(node);
  return found;
}

describe("the import graph of src", () => {
  const graph = new Map(sourceFiles(SRC).map((file) => [file, importsOf(file)]));

  it("reads the imports it should (type-only, re-exports, dynamic)", () => {
    const edges = [...graph.values()].reduce((n, list) => n + list.length, 0);
    expect(graph.size).toBeGreaterThan(150);
    expect(edges).toBeGreaterThan(graph.size);
    expect(
      cycles(
        new Map([
          ["a", ["b"]],
          ["b", ["c"]],
          ["c", ["a"]],
          ["d", ["a"]],
        ]),
      ),
    ).toEqual([["a", "b", "c"]]);
  });

  it("has no cycle, type-only imports included", () => {
    const found = cycles(graph).map((component) => component.map((file) => relative(SRC, file)));
    expect(found).toEqual([]);
  });
});
