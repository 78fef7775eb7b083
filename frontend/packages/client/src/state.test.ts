import { describe, expect, it } from "vitest";
import type { Completed, Progress, TaskRecord } from "./generated/contract.js";
import { elapsedMs, isFinal, isPayload, isRecord, remainingSeconds, TaskStore } from "./state.js";

const T0 = Date.parse("2026-01-02T10:00:00Z");

function record(over: Partial<TaskRecord> = {}): TaskRecord {
  return {
    taskId: "t1",
    kind: "export",
    state: "running",
    seq: 3,
    percent: 30,
    done: 30_000,
    total: 100_000,
    stage: "generating",
    attempts: 1,
    maxAttempts: 3,
    params: { rows: 100_000 },
    createdAt: "2026-01-02T10:00:00Z",
    startedAt: "2026-01-02T10:00:01Z",
    ...over,
  };
}

function progress(seq: number, percent: number, over: Partial<Progress> = {}): Progress {
  return { taskId: "t1", seq, percent, done: percent * 1000, total: 100_000, stage: "generating", ...over };
}

function completed(seq: number, over: Partial<Completed> = {}): Completed {
  return { taskId: "t1", seq, resultUrl: "/api/v1/tasks/t1/result", rows: 100_000, bytes: 6_500_000, ...over };
}

describe("TaskStore: snapshot, then live events by seq", () => {
  it("applies newer events and drops older and repeated ones", () => {
    const s = new TaskStore();
    expect(s.applySnapshot(record(), T0)).toBe(true);
    expect(s.applyProgress(progress(4, 40), T0 + 100)).toBe(true);
    expect(s.get("t1")?.percent).toBe(40);

    expect(s.applyProgress(progress(4, 41), T0 + 200)).toBe(false); // same seq
    expect(s.applyProgress(progress(2, 20), T0 + 300)).toBe(false); // older than held
    expect(s.get("t1")).toMatchObject({ seq: 4, percent: 40, done: 40_000 });

    expect(s.applyCompleted(completed(10), T0 + 400)).toBe(true);
    expect(s.applyProgress(progress(9, 90), T0 + 500)).toBe(false); // in flight when it completed
    expect(s.get("t1")).toMatchObject({
      state: "completed",
      percent: 100,
      done: 100_000,
      result: { url: "/api/v1/tasks/t1/result", rows: 100_000, bytes: 6_500_000 },
    });
    expect(s.unfinished()).toEqual([]);
  });

  it("drops a snapshot older than the events it holds, but takes its static fields", () => {
    const s = new TaskStore();
    // The events of a task this tab created can beat the POST's answer and the snapshot.
    expect(s.applyProgress(progress(5, 50), T0)).toBe(true);
    expect(s.get("t1")).toMatchObject({ kind: undefined, rows: undefined, createdAt: undefined, state: "running" });

    s.accepted("t1", "export", 100_000, T0 + 1);
    expect(s.applySnapshot(record({ seq: 2, percent: 20, state: "queued" }), T0 + 2)).toBe(true);
    expect(s.get("t1")).toMatchObject({
      seq: 5,
      percent: 50,
      state: "running",
      kind: "export",
      rows: 100_000,
      createdAt: "2026-01-02T10:00:00Z",
      maxAttempts: 3,
    });
  });

  it("fills what events do not carry from a snapshot of the same seq", () => {
    const s = new TaskStore();
    s.applyCompleted(completed(7), T0);
    expect(s.get("t1")?.result?.filename).toBeUndefined();
    s.applySnapshot(
      record({
        seq: 7,
        state: "completed",
        percent: 100,
        finishedAt: "2026-01-02T10:00:09Z",
        result: { url: "/api/v1/tasks/t1/result", rows: 100_000, bytes: 6_500_000, contentType: "text/csv", filename: "orders.csv" },
      }),
      T0 + 1,
    );
    expect(s.get("t1")).toMatchObject({ state: "completed", finishedAt: "2026-01-02T10:00:09Z" });
    expect(s.get("t1")?.result?.filename).toBe("orders.csv");
  });

  it("reports no change for a snapshot it already holds", () => {
    const s = new TaskStore();
    expect(s.applySnapshot(record(), T0)).toBe(true);
    expect(s.applySnapshot(record(), T0 + 5)).toBe(false);
    expect(s.get("t1")?.updatedAt).toBe(T0);
  });

  it("catches up after a reconnect: the snapshot replaces a stale view, late events are dropped", () => {
    const s = new TaskStore();
    s.applySnapshot(record({ seq: 5, percent: 50 }), T0);
    // Disconnected while events 6..11 were published; the task completed at 11.
    const snap = record({
      seq: 11,
      state: "completed",
      percent: 100,
      done: 100_000,
      finishedAt: "2026-01-02T10:00:12Z",
      result: { url: "/api/v1/tasks/t1/result", rows: 100_000, bytes: 6_400_000, contentType: "text/csv", filename: "x.csv" },
    });
    expect(s.applySnapshot(snap, T0 + 10_000)).toBe(true);
    expect(s.get("t1")).toMatchObject({ state: "completed", seq: 11, result: { bytes: 6_400_000, filename: "x.csv" } });
    // An event from the old connection that arrives late changes nothing.
    expect(s.applyProgress(progress(8, 80), T0 + 10_001)).toBe(false);
    expect(s.get("t1")?.state).toBe("completed");
  });

  it("follows cancel: requested on a running task, then the cancelled event", () => {
    const s = new TaskStore();
    s.applySnapshot(record({ seq: 4 }), T0);
    s.applyProgress(progress(5, 50), T0 + 1);
    // The DELETE answer: the record as stored, with the flag set but an older seq.
    expect(s.applySnapshot(record({ seq: 4, cancelRequested: true }), T0 + 2)).toBe(true);
    expect(s.get("t1")).toMatchObject({ cancelRequested: true, seq: 5, percent: 50 });
    expect(s.applyCancelled({ taskId: "t1", seq: 6 }, T0 + 3)).toBe(true);
    expect(s.get("t1")?.state).toBe("cancelled");
    expect(isFinal("cancelled")).toBe(true);
  });

  it("keeps the error of a failed task", () => {
    const s = new TaskStore();
    s.applyProgress(progress(1, 10), T0);
    s.applyFailed({ taskId: "t1", seq: 2, error: { code: "worker_lost", message: "the worker stopped 3 times" } }, T0 + 1);
    expect(s.get("t1")).toMatchObject({ state: "failed", error: { code: "worker_lost" } });
  });

  it("shows a scheduled retry and its attempt count", () => {
    const s = new TaskStore();
    s.applySnapshot(record({ seq: 9, state: "queued", attempts: 2, nextAttemptAt: "2026-01-02T10:01:00Z" }), T0);
    expect(s.get("t1")).toMatchObject({ state: "queued", attempts: 2, nextAttemptAt: "2026-01-02T10:01:00Z" });
    expect(s.unfinished()).toEqual(["t1"]);
    s.applyProgress(progress(10, 5), T0 + 1);
    expect(s.get("t1")).toMatchObject({ state: "running", nextAttemptAt: undefined });
  });

  it("clamps impossible percentages", () => {
    const s = new TaskStore();
    s.applyProgress(progress(1, 150), T0);
    expect(s.get("t1")?.percent).toBe(100);
    s.applyProgress(progress(2, Number.NaN), T0);
    expect(s.get("t1")?.percent).toBe(0);
  });

  it("lists newest first and names the unfinished tasks", () => {
    const s = new TaskStore();
    s.applySnapshot(record({ taskId: "old", createdAt: "2026-01-02T09:00:00Z", state: "completed" }), T0);
    s.applySnapshot(record({ taskId: "new", createdAt: "2026-01-02T11:00:00Z" }), T0);
    s.applySnapshot(record({ taskId: "mid", createdAt: "2026-01-02T10:00:00Z", state: "queued" }), T0);
    expect(s.list().map((t) => t.id)).toEqual(["new", "mid", "old"]);
    expect(s.unfinished().sort()).toEqual(["mid", "new"]);
    expect(s.remove("mid")).toBe(true);
    expect(s.size).toBe(2);
  });
});

describe("time", () => {
  it("measures elapsed time from the server's start and finish times, corrected for skew", () => {
    const s = new TaskStore();
    s.applySnapshot(record({ startedAt: "2026-01-02T10:00:00Z" }), T0);
    const t = s.get("t1")!;
    expect(elapsedMs(t, T0 + 5_000)).toBe(5_000);
    // The server's clock is 2 s ahead of ours.
    expect(elapsedMs(t, T0 + 5_000, 2_000)).toBe(7_000);
    s.applySnapshot(record({ seq: 9, state: "completed", startedAt: "2026-01-02T10:00:00Z", finishedAt: "2026-01-02T10:00:04Z" }), T0);
    expect(elapsedMs(s.get("t1")!, T0 + 60_000)).toBe(4_000);
  });

  it("falls back to when this page first saw the task running", () => {
    const s = new TaskStore();
    s.applyProgress(progress(1, 1), T0);
    expect(elapsedMs(s.get("t1")!, T0 + 3_000)).toBe(3_000);
    s.applyCancelled({ taskId: "t1", seq: 2 }, T0 + 4_000);
    expect(elapsedMs(s.get("t1")!, T0 + 9_000)).toBe(4_000);
  });

  it("has no duration for a finished task whose end it neither saw nor was told", () => {
    const s = new TaskStore();
    s.applySnapshot(record({ seq: 9, state: "failed", startedAt: "2026-01-02T10:00:00Z" }), T0 + 60_000);
    expect(elapsedMs(s.get("t1")!, T0 + 90_000)).toBeUndefined();
  });

  it("has no elapsed time for a queued task", () => {
    const s = new TaskStore();
    const { startedAt: _, ...queued } = record({ state: "queued" });
    s.applySnapshot(queued, T0);
    expect(elapsedMs(s.get("t1")!, T0 + 1000)).toBeUndefined();
  });

  it("counts the ETA down between events", () => {
    const s = new TaskStore();
    s.applyProgress(progress(1, 10, { etaSeconds: 20 }), T0);
    expect(remainingSeconds(s.get("t1")!, T0 + 5_000)).toBe(15);
    expect(remainingSeconds(s.get("t1")!, T0 + 60_000)).toBe(0);
    s.applyProgress(progress(2, 20), T0 + 6_000); // no ETA in this event
    expect(remainingSeconds(s.get("t1")!, T0 + 6_000)).toBeUndefined();
  });
});

describe("guards for what arrives over the wire", () => {
  it("recognises payloads and records", () => {
    expect(isPayload({ taskId: "a", seq: 1 })).toBe(true);
    expect(isPayload({ taskId: "a", seq: "1" })).toBe(false);
    expect(isPayload({ taskId: "", seq: 1 })).toBe(false);
    expect(isPayload(null)).toBe(false);
    expect(isRecord(record())).toBe(true);
    expect(isRecord({ error: { code: "not_found", message: "no such task" } })).toBe(false);
  });
});

describe("TaskStore: stages, metadata, streams and attempts", () => {
  const base = { taskId: "t1" };

  it("applies stage and metadata events by seq", () => {
    const s = new TaskStore();
    s.applySnapshot(record({ stage: "query", stageMessage: "Reading orders" }), T0);
    expect(s.get("t1")).toMatchObject({ stage: "query", stageMessage: "Reading orders" });
    expect(s.applyStage({ ...base, seq: 4, attempt: 1, stage: "render", message: "Drawing page 1" }, T0)).toBe(true);
    expect(s.applyMetadata({ ...base, seq: 5, attempt: 1, metadata: { pages: 3, rows: 24000 } }, T0)).toBe(true);
    expect(s.applyMetadata({ ...base, seq: 5, attempt: 1, metadata: { pages: 99 } }, T0)).toBe(false);
    expect(s.get("t1")).toMatchObject({ stage: "render", stageMessage: "Drawing page 1", metadata: { pages: 3, rows: 24000 } });
    // A progress event of another stage without a message does not keep the old message.
    s.applyProgress(progress(6, 70, { stage: "store" }), T0);
    expect(s.get("t1")).toMatchObject({ stage: "store", stageMessage: "" });
  });

  it("merges stream chunks by offset and lists the gaps", () => {
    const s = new TaskStore();
    s.applySnapshot(record({ seq: 3, streams: { metrics: 2 } }), T0);
    expect(s.missing("t1")).toEqual([{ taskId: "t1", stream: "metrics", from: 0, attempt: 1 }]);
    expect(s.applyFetched("t1", "metrics", 1, 0, [{ epoch: 1 }, { epoch: 2 }], T0)).toBe(true);
    expect(s.missing("t1")).toEqual([]);
    s.applyStream({ ...base, seq: 4, attempt: 1, stream: "metrics", offset: 2, items: [{ epoch: 3 }] }, T0);
    s.applyStream({ ...base, seq: 5, attempt: 1, stream: "metrics", offset: 2, items: [{ epoch: 3 }, { epoch: 4 }] }, T0);
    expect(s.streamCount("t1", "metrics")).toBe(4);
    // A chunk past the end: a gap to fetch.
    s.applyStream({ ...base, seq: 6, attempt: 1, stream: "metrics", offset: 9, items: [{ epoch: 10 }] }, T0);
    expect(s.streamCount("t1", "metrics")).toBe(4);
    expect(s.missing("t1")).toEqual([{ taskId: "t1", stream: "metrics", from: 4, attempt: 1 }]);
    // A stale chunk (seq not newer) is dropped, as every event.
    expect(s.applyStream({ ...base, seq: 6, attempt: 1, stream: "log", offset: 0, items: ["x"] }, T0)).toBe(false);
  });

  it("a higher attempt resets streams and metadata; a fetch for the old attempt is dropped", () => {
    const s = new TaskStore();
    s.applySnapshot(record({ seq: 3, attempts: 1, metadata: { rows: 5 }, streams: { log: 1 } }), T0);
    s.applyFetched("t1", "log", 1, 0, ["line 1"], T0);
    s.applyProgress(progress(10, 0, { stage: "started", attempt: 2 }), T0);
    expect(s.get("t1")).toMatchObject({ attempt: 2, attempts: 2, metadata: undefined, streams: {} });
    expect(s.applyFetched("t1", "log", 1, 0, ["line 1"], T0)).toBe(false);
    expect(s.get("t1")?.streams).toEqual({});
    s.applyStream({ ...base, seq: 11, attempt: 2, stream: "log", offset: 0, items: ["again"] }, T0);
    expect(s.get("t1")?.streams["log"]?.items).toEqual(["again"]);
    // A snapshot of the old attempt says nothing of the new one's streams.
    s.applySnapshot(record({ seq: 9, attempts: 1, streams: { log: 7 } }), T0);
    expect(s.missing("t1")).toEqual([]);
  });

  it("keeps the result's type, name and JSON value", () => {
    const s = new TaskStore();
    s.applyCompleted(
      completed(7, {
        rows: 0,
        bytes: 120,
        result: { url: "/r", rows: 0, bytes: 120, contentType: "application/json", filename: "model.json", value: { w: [1, 2] } },
      }),
      T0,
    );
    expect(s.get("t1")?.result).toEqual({ url: "/r", rows: 0, bytes: 120, contentType: "application/json", filename: "model.json", value: { w: [1, 2] } });
  });

  it("takes the place in the queue from any snapshot of a queued task", () => {
    const s = new TaskStore();
    s.applySnapshot(record({ state: "queued", seq: 0, queuePosition: 3, noLiveWorker: true }), T0);
    expect(s.get("t1")).toMatchObject({ queuePosition: 3, noLiveWorker: true });
    s.applySnapshot(record({ state: "queued", seq: 0, queuePosition: 1 }), T0 + 1);
    expect(s.get("t1")?.queuePosition).toBe(1);
    s.applyProgress(progress(1, 1), T0 + 2);
    expect(s.get("t1")?.queuePosition).toBeUndefined();
  });

  it("clears finished tasks for good", () => {
    const s = new TaskStore(["old"]);
    expect(s.applySnapshot(record({ taskId: "old", state: "completed", seq: 9 }), T0)).toBe(false);
    expect(s.get("old")).toBeUndefined();
    s.applySnapshot(record({ taskId: "run" }), T0);
    s.applySnapshot(record({ taskId: "done", state: "failed", seq: 8 }), T0);
    expect(s.clear("run")).toBe(false);
    expect(s.clear("done")).toBe(true);
    expect(s.applyFailed({ taskId: "done", seq: 20, error: { code: "x", message: "y" } }, T0)).toBe(false);
    expect(s.get("done")).toBeUndefined();
    expect(s.clearedIds().sort()).toEqual(["done", "old"]);
    expect(s.forgetClearedExcept(["done"])).toBe(true);
    expect(s.clearedIds()).toEqual(["done"]);
  });
});
