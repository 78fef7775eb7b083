import { describe, expect, it } from "vitest";
import type { InboxEntry } from "@taskwire/client";
import { badgeText, bellLabel, noticeText, noticeTime } from "./notices";

const entry = (over: Partial<InboxEntry> = {}): InboxEntry => ({
  taskId: "a",
  kind: "export",
  state: "completed",
  seq: 9,
  finishedAt: "2026-01-02T10:00:00Z",
  ...over,
});

describe("notices", () => {
  it("badge: the count, capped, and nothing for none", () => {
    expect(badgeText(0)).toBe("");
    expect(badgeText(3)).toBe("3");
    expect(badgeText(120)).toBe("99+");
    expect(bellLabel(0)).toBe("Finished tasks: nothing new");
    expect(bellLabel(2)).toBe("Finished tasks: 2 new");
  });

  it("says what happened, with the kind's title and the error", () => {
    const k = { name: "export", title: "CSV export", paramsSchema: {}, workers: 1 };
    expect(noticeText(entry(), k)).toBe("CSV export completed");
    expect(noticeText(entry({ state: "cancelled" }), k)).toBe("CSV export was cancelled");
    expect(noticeText(entry({ state: "failed", error: { code: "x", message: "Result too large." } }), k)).toBe("CSV export failed: Result too large.");
    expect(noticeText(entry({ state: "failed", kind: "train" as InboxEntry["kind"] }))).toBe("Train failed");
  });

  it("says when it finished", () => {
    const now = Date.parse("2026-01-02T12:00:00Z");
    expect(noticeTime(entry(), now, "en-US", "UTC")).toBe("Finished 10:00:00");
    expect(noticeTime(entry({ finishedAt: "" }), now, "en-US", "UTC")).toBe("");
  });
});
