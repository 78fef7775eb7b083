import { describe, expect, it } from "vitest";
import type { InboxEntry } from "./generated/contract.js";
import { InboxList, isInboxEntry } from "./inbox.js";

const entry = (id: string, finishedAt: string, over: Partial<InboxEntry> = {}): InboxEntry => ({
  taskId: id,
  kind: "export",
  state: "completed",
  seq: 9,
  finishedAt,
  ...over,
});

describe("InboxList", () => {
  it("keeps the unseen entries newest first, and says when it changed", () => {
    const l = new InboxList();
    expect(l.set([entry("a", "2026-01-02T09:00:00Z"), entry("b", "2026-01-02T11:00:00Z")])).toBe(true);
    expect(l.add(entry("c", "2026-01-02T10:00:00Z", { state: "failed", error: { code: "x", message: "x" } }))).toBe(true);
    expect(l.items().map((e) => e.taskId)).toEqual(["b", "c", "a"]);
    expect(l.add(entry("c", "2026-01-02T10:00:00Z", { state: "failed", error: { code: "x", message: "x" } }))).toBe(false);
    expect(l.set(l.items())).toBe(false);
    expect(l.size).toBe(3);
  });

  it("forgets entries marked seen for good: a list read before the ack does not bring them back", () => {
    const l = new InboxList();
    l.set([entry("a", "2026-01-02T09:00:00Z"), entry("b", "2026-01-02T11:00:00Z")]);
    expect(l.markSeen(["a"])).toBe(true);
    expect(l.markSeen(["a"])).toBe(false);
    l.set([entry("a", "2026-01-02T09:00:00Z"), entry("b", "2026-01-02T11:00:00Z")]);
    expect(l.add(entry("a", "2026-01-02T09:00:00Z"))).toBe(false);
    expect(l.items().map((e) => e.taskId)).toEqual(["b"]);
    expect(l.has("a")).toBe(false);
  });

  it("refuses what is not a finished task's entry", () => {
    const l = new InboxList();
    expect(l.add({ taskId: "a" })).toBe(false);
    expect(l.add(entry("r", "2026-01-02T09:00:00Z", { state: "running" }))).toBe(false);
    expect(l.add(null)).toBe(false);
    expect(isInboxEntry(entry("a", "x"))).toBe(true);
    expect(l.size).toBe(0);
  });
});
