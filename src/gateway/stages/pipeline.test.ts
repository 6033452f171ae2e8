import { describe, expect, it } from "vitest";
import { DECIDE_STAGES } from "./pipeline.js";

describe("decide's stages", () => {
  it("are listed in order, each with the reason for its place", () => {
    expect(DECIDE_STAGES.map((stage) => stage.name)).toEqual([
      "async-checks",
      "judge",
      "limits-budget-approvals",
      "observe",
    ]);
    for (const stage of DECIDE_STAGES) expect(stage.why.length).toBeGreaterThan(40);
  });
});
