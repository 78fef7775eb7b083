import { describe, expect, it } from "vitest";

import { matches, tasksQuery, type AdminTask } from "./api";

describe("tasksQuery", () => {
  it("keeps only the filters set, trimmed, with the limit and cursor", () => {
    expect(tasksQuery({ kind: " export ", state: "", owner: undefined as unknown as string }, 50)).toBe("kind=export&limit=50");
    expect(tasksQuery({ state: "failed", olderThan: "10m" }, 20, "17-abc")).toBe("state=failed&olderThan=10m&limit=20&cursor=17-abc");
  });
});

describe("matches", () => {
  const t: AdminTask = { taskId: "a", kind: "export", state: "running", owner: "u-1", attempts: 1, maxAttempts: 3, createdAt: "2026-01-01T00:00:00Z" };
  it("checks kind, state and owner", () => {
    expect(matches(t, {})).toBe(true);
    expect(matches(t, { kind: "export", state: "running", owner: "u-1" })).toBe(true);
    expect(matches(t, { state: "failed" })).toBe(false);
    expect(matches(t, { owner: "u-2" })).toBe(false);
  });
});
