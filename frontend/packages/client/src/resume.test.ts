// planResume and the store together: whatever order the ack's events and the live
// ones come in, and however they overlap, each event is applied once, in seq order.

import { describe, expect, it } from "vitest";
import type { HistoryEvent, SubscribeAck, TaskRecord } from "./generated/contract.js";
import { Kept, maxKept, planResume, recordOf, type Step } from "./resume.js";
import { TaskStore } from "./state.js";

function rec(seq: number, over: Partial<TaskRecord> = {}): TaskRecord {
  return {
    taskId: "a",
    kind: "export",
    state: "running",
    seq,
    percent: seq,
    done: seq,
    total: 100,
    attempts: 1,
    maxAttempts: 3,
    params: { rows: 100 },
    createdAt: "2026-01-02T10:00:00Z",
    ...over,
  };
}

/** chunk is a task:stream event carrying item seq at offset seq-1 of "log". */
function chunk(seq: number): HistoryEvent {
  return { seq, event: "task:stream", data: { taskId: "a", seq, attempt: 1, stream: "log", offset: seq - 1, items: [`line ${seq}`] } };
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

function seqs(steps: Step[]): number[] {
  return steps.flatMap((s) => (s.kind === "event" ? [s.event.seq] : []));
}

function ack(seq: number, events: HistoryEvent[] | undefined, recovered: boolean | undefined, over: Partial<SubscribeAck> = {}): SubscribeAck {
  const a: SubscribeAck = { ...rec(seq, { streams: { log: seq } }), ...over };
  if (events !== undefined) a.events = events;
  if (recovered !== undefined) a.recovered = recovered;
  return a;
}

function keep(k: Kept, events: HistoryEvent[]): Kept {
  for (const e of events) k.keep(e.event, e.data as { seq: number });
  return k;
}

/** apply runs the steps on a store holding the task at seq held (with its log up to held). */
function apply(steps: Step[], held: number): TaskStore {
  const st = new TaskStore();
  st.applySnapshot(rec(held, { streams: { log: held } }), 0);
  st.applyFetched("a", "log", 1, 0, range(1, held).map((i) => `line ${i}`), 0);
  for (const s of steps) {
    if (s.kind === "record") (s.replace ? st.replaceSnapshot(s.record, 1) : st.applySnapshot(s.record, 1));
    else st.applyStream(s.event.data as never, 1);
  }
  return st;
}

describe("planResume", () => {
  it("recovered: applies the ack's events, then the record, then the live ones after them", () => {
    const k = keep(new Kept(), [chunk(13), chunk(14)]);
    const steps = planResume(ack(12, range(11, 12).map(chunk), true), k, 10);
    expect(seqs(steps)).toEqual([11, 12, 13, 14]);
    expect(steps[2]).toMatchObject({ kind: "record", replace: false });
    const items = apply(steps, 10).get("a")!.streams["log"]!.items;
    expect(items).toEqual(range(1, 14).map((i) => `line ${i}`));
  });

  it("the race: live events before the ack, also in the ack, duplicated and out of order", () => {
    // The server joined the room, then read the history: 11..15 came live as well,
    // 13 twice, and 16, 17 after the history was read.
    const live = [chunk(12), chunk(11), chunk(13), chunk(13), chunk(14), chunk(15), chunk(16), chunk(17)];
    const history = [chunk(11), chunk(12), chunk(13), chunk(14), chunk(15), chunk(15)];
    const steps = planResume(ack(15, history, true), keep(new Kept(), live), 10);
    expect(seqs(steps)).toEqual(range(11, 17));
    const t = apply(steps, 10).get("a")!;
    expect(t.seq).toBe(17);
    expect(t.streams["log"]!.items).toEqual(range(1, 17).map((i) => `line ${i}`));
  });

  it("drops the events the view already has", () => {
    const steps = planResume(ack(12, range(8, 12).map(chunk), true), keep(new Kept(), [chunk(9), chunk(13)]), 10);
    expect(seqs(steps)).toEqual([11, 12, 13]);
  });

  it("recovered false: the record replaces the view, then the live events after it", () => {
    const k = keep(new Kept(), [chunk(40), chunk(41), chunk(42)]);
    const steps = planResume(ack(41, undefined, false, { reason: "trimmed" }), k, 10);
    expect(steps[0]).toMatchObject({ kind: "record", replace: true, record: { seq: 41 } });
    expect(seqs(steps)).toEqual([42]);
    const t = apply(steps, 10).get("a")!;
    expect(t.seq).toBe(42);
    // The log's missing part is for the page to fetch over HTTP, as on a reload.
    expect(t.streams["log"]!.known).toBe(42);
  });

  it("recovered false with a record older than the view (the server lost events): the record wins", () => {
    const steps = planResume(ack(5, undefined, false, { reason: "expired" }), keep(new Kept(), [chunk(6)]), 10);
    expect(seqs(steps)).toEqual([6]);
    const t = apply(steps, 10).get("a")!;
    expect(t.seq).toBe(6);
    expect(t.percent).toBe(5);
  });

  it("a server without history (no recovered): the live events, then the record", () => {
    const steps = planResume(ack(12, undefined, undefined), keep(new Kept(), [chunk(12), chunk(11), chunk(13)]), 10);
    expect(seqs(steps)).toEqual([11, 12, 13]);
    expect(steps.at(-1)).toMatchObject({ kind: "record", replace: false });
  });

  it("applies a record kept meanwhile only when it is newer than everything", () => {
    const k = keep(new Kept(), [chunk(13)]);
    k.keepSnapshot(rec(12));
    k.keepSnapshot(rec(11)); // older: ignored
    expect(k.snapshot?.seq).toBe(12);
    let steps = planResume(ack(12, range(11, 12).map(chunk), true), k, 10);
    expect(steps.filter((s) => s.kind === "record")).toHaveLength(1);
    k.keepSnapshot(rec(20));
    steps = planResume(ack(12, range(11, 12).map(chunk), true), k, 10);
    expect(steps.at(-1)).toMatchObject({ kind: "record", record: { seq: 20 } });
  });

  it("ignores malformed history entries", () => {
    const bad = [{ seq: 11 } as unknown as HistoryEvent, { seq: Number.NaN, event: "task:stream", data: {} } as HistoryEvent, chunk(12)];
    expect(seqs(planResume(ack(12, bad, true), undefined, 10))).toEqual([12]);
  });

  it("recordOf leaves out the history fields", () => {
    const r = recordOf(ack(12, [chunk(11)], true, { reason: "trimmed" }));
    expect(r).not.toHaveProperty("events");
    expect(r).not.toHaveProperty("recovered");
    expect(r).not.toHaveProperty("reason");
    expect(r.seq).toBe(12);
  });

  it("Kept is bounded", () => {
    const k = new Kept();
    let taken = 0;
    for (let i = 0; i < maxKept; i++) if (k.keep("task:progress", { seq: i })) taken++;
    expect(taken).toBe(maxKept);
    expect(k.keep("task:progress", { seq: maxKept })).toBe(false);
  });
});
