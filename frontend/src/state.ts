// The client-side model of the tasks of this identity. Pure: no DOM, no network,
// no clock (every method that needs the time takes it), so it is unit-tested.
//
// Ordering rule of the contract: every event and every snapshot of a task carries a
// per-task sequence number (seq). The store applies anything whose seq is greater
// than the one it holds and drops the rest. A snapshot that is not newer still fills
// the fields events never carry (kind, createdAt, the requested rows...), because the
// events of a task this tab created can arrive before its first snapshot.

import type {
  Cancelled,
  Completed,
  Failed,
  Progress,
  TaskErrorInfo,
  TaskKind,
  TaskRecord,
  TaskState,
} from "./generated/contract";

/** What the page knows of a task's result. */
export interface ResultView {
  url: string;
  rows: number;
  bytes: number;
  filename: string | undefined;
}

/** TaskView is one task as the page shows it. */
export interface TaskView {
  id: string;
  /** Unknown until the first snapshot. */
  kind: TaskKind | undefined;
  state: TaskState;
  /** The highest seq applied; -1 before anything from the server. */
  seq: number;
  percent: number;
  done: number;
  total: number;
  stage: string;
  /** Seconds left as last reported, and the local time it was received. */
  etaSeconds: number | undefined;
  etaReceivedAt: number | undefined;
  attempts: number;
  maxAttempts: number;
  nextAttemptAt: string | undefined;
  cancelRequested: boolean;
  /** The rows asked for (params.rows of an export). */
  rows: number | undefined;
  /** Server times, RFC 3339. */
  createdAt: string | undefined;
  startedAt: string | undefined;
  finishedAt: string | undefined;
  /** Local times (ms) that stand in for server times the page has not been told. */
  seenAt: number;
  seenRunningAt: number | undefined;
  seenFinishedAt: number | undefined;
  result: ResultView | undefined;
  error: TaskErrorInfo | undefined;
  /** Local time (ms) of the last change applied from the server. */
  updatedAt: number;
}

/** isFinal reports whether a task in state s can still change. */
export function isFinal(s: TaskState): boolean {
  switch (s) {
    case "completed":
    case "failed":
    case "cancelled":
      return true;
    case "queued":
    case "running":
      return false;
    default:
      return assertNever(s);
  }
}

function assertNever(x: never): never {
  throw new Error("unexpected value " + String(x));
}

/** isRecord tells a task record from the error answer of a socket request. */
export function isRecord(v: unknown): v is TaskRecord {
  return typeof v === "object" && v !== null && typeof (v as { taskId?: unknown }).taskId === "string";
}

/** isPayload checks the two fields every event payload must carry. */
export function isPayload(v: unknown): v is { taskId: string; seq: number } {
  if (typeof v !== "object" || v === null) return false;
  const p = v as { taskId?: unknown; seq?: unknown };
  return typeof p.taskId === "string" && p.taskId !== "" && typeof p.seq === "number" && Number.isFinite(p.seq);
}

function rowsOf(params: unknown): number | undefined {
  if (typeof params === "object" && params !== null) {
    const r = (params as { rows?: unknown }).rows;
    if (typeof r === "number" && Number.isFinite(r)) return r;
  }
  return undefined;
}

function clampPercent(p: number): number {
  if (!Number.isFinite(p)) return 0;
  return Math.min(100, Math.max(0, p));
}

function blank(id: string, now: number): TaskView {
  return {
    id,
    kind: undefined,
    state: "queued",
    seq: -1,
    percent: 0,
    done: 0,
    total: 0,
    stage: "",
    etaSeconds: undefined,
    etaReceivedAt: undefined,
    attempts: 0,
    maxAttempts: 0,
    nextAttemptAt: undefined,
    cancelRequested: false,
    rows: undefined,
    createdAt: undefined,
    startedAt: undefined,
    finishedAt: undefined,
    seenAt: now,
    seenRunningAt: undefined,
    seenFinishedAt: undefined,
    result: undefined,
    error: undefined,
    updatedAt: now,
  };
}

/** TaskStore holds the tasks of this identity, keyed by id. */
export class TaskStore {
  private readonly tasks = new Map<string, TaskView>();

  /** get returns the task with id, if known. */
  get(id: string): TaskView | undefined {
    return this.tasks.get(id);
  }

  /** size is the number of known tasks. */
  get size(): number {
    return this.tasks.size;
  }

  /** list returns the tasks, newest first. */
  list(): TaskView[] {
    const key = (t: TaskView) => (t.createdAt !== undefined ? Date.parse(t.createdAt) : t.seenAt);
    return [...this.tasks.values()].sort((a, b) => key(b) - key(a) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** unfinished returns the ids of the tasks that can still change. */
  unfinished(): string[] {
    return [...this.tasks.values()].filter((t) => !isFinal(t.state)).map((t) => t.id);
  }

  /** remove forgets a task (for instance one the server no longer knows). */
  remove(id: string): boolean {
    return this.tasks.delete(id);
  }

  private entry(id: string, now: number): TaskView {
    let t = this.tasks.get(id);
    if (!t) {
      t = blank(id, now);
      this.tasks.set(id, t);
    }
    return t;
  }

  /**
   * accepted records a task this page has just created (the 202 answer). It never
   * overrides what the server already said about the task.
   */
  accepted(id: string, kind: TaskKind, rows: number, now: number): TaskView {
    const t = this.entry(id, now);
    t.kind ??= kind;
    t.rows ??= rows;
    if (t.total === 0 && t.seq < 0) t.total = rows;
    return t;
  }

  /**
   * applySnapshot applies a task record (task:state, GET, DELETE, subscribe ack).
   * It returns whether anything changed.
   */
  applySnapshot(r: TaskRecord, now: number): boolean {
    const existed = this.tasks.has(r.taskId);
    const t = this.entry(r.taskId, now);
    const before = JSON.stringify(t);

    // Static fields: filled whatever the seq.
    t.kind ??= r.kind;
    t.createdAt ??= r.createdAt;
    t.rows ??= rowsOf(r.params);
    if (t.maxAttempts === 0) t.maxAttempts = r.maxAttempts;

    if (r.seq > t.seq) {
      t.seq = r.seq;
      t.state = r.state;
      t.percent = clampPercent(r.percent);
      t.done = r.done;
      t.total = r.total;
      t.stage = r.stage ?? "";
      t.etaSeconds = r.etaSeconds;
      t.etaReceivedAt = r.etaSeconds !== undefined ? now : undefined;
      t.attempts = r.attempts;
      t.maxAttempts = r.maxAttempts;
      t.nextAttemptAt = r.nextAttemptAt;
      t.cancelRequested = r.cancelRequested ?? false;
      t.startedAt = r.startedAt;
      t.finishedAt = r.finishedAt;
      t.result = r.result
        ? { url: r.result.url, rows: r.result.rows, bytes: r.result.bytes, filename: r.result.filename || undefined }
        : undefined;
      t.error = r.error;
    } else if (r.seq === t.seq) {
      // The same state as held: only fill what the events did not carry.
      t.startedAt ??= r.startedAt;
      t.finishedAt ??= r.finishedAt;
      if (t.result && r.result) t.result.filename ??= r.result.filename || undefined;
      t.result ??= r.result
        ? { url: r.result.url, rows: r.result.rows, bytes: r.result.bytes, filename: r.result.filename || undefined }
        : undefined;
      t.error ??= r.error;
      if (t.attempts === 0) t.attempts = r.attempts;
    }
    // A cancel request does not advance seq (DELETE answers with the record as it
    // was, flag set), and it is never withdrawn: take it from any snapshot.
    if (r.cancelRequested && !isFinal(t.state)) t.cancelRequested = true;
    this.noteState(t, now);
    const changed = !existed || JSON.stringify(t) !== before;
    if (changed) t.updatedAt = now;
    return changed;
  }

  /** applyProgress applies a task:progress event. */
  applyProgress(p: Progress, now: number): boolean {
    const t = this.fresh(p, now);
    if (!t) return false;
    t.state = "running";
    t.percent = clampPercent(p.percent);
    t.done = p.done;
    t.total = p.total;
    t.stage = p.stage;
    t.etaSeconds = p.etaSeconds;
    t.etaReceivedAt = p.etaSeconds !== undefined ? now : undefined;
    t.nextAttemptAt = undefined;
    this.noteState(t, now);
    return true;
  }

  /** applyCompleted applies a task:completed event. */
  applyCompleted(c: Completed, now: number): boolean {
    const t = this.fresh(c, now);
    if (!t) return false;
    t.state = "completed";
    t.percent = 100;
    t.done = c.rows;
    t.total = c.rows;
    t.etaSeconds = undefined;
    t.etaReceivedAt = undefined;
    t.nextAttemptAt = undefined;
    t.cancelRequested = false;
    t.error = undefined;
    t.result = { url: c.resultUrl, rows: c.rows, bytes: c.bytes, filename: undefined };
    this.noteState(t, now);
    return true;
  }

  /** applyFailed applies a task:failed event. */
  applyFailed(f: Failed, now: number): boolean {
    const t = this.fresh(f, now);
    if (!t) return false;
    t.state = "failed";
    t.error = f.error;
    t.etaSeconds = undefined;
    t.etaReceivedAt = undefined;
    t.nextAttemptAt = undefined;
    this.noteState(t, now);
    return true;
  }

  /** applyCancelled applies a task:cancelled event. */
  applyCancelled(c: Cancelled, now: number): boolean {
    const t = this.fresh(c, now);
    if (!t) return false;
    t.state = "cancelled";
    t.etaSeconds = undefined;
    t.etaReceivedAt = undefined;
    t.nextAttemptAt = undefined;
    this.noteState(t, now);
    return true;
  }

  /** fresh returns the entry an event applies to, or undefined when it is stale. */
  private fresh(p: { taskId: string; seq: number }, now: number): TaskView | undefined {
    const t = this.entry(p.taskId, now);
    if (p.seq <= t.seq) return undefined;
    t.seq = p.seq;
    t.updatedAt = now;
    return t;
  }

  private noteState(t: TaskView, now: number): void {
    if (t.state === "running") t.seenRunningAt ??= now;
    if (isFinal(t.state)) t.seenFinishedAt ??= now;
  }
}

/**
 * elapsedMs is how long the task has been running (or ran), in ms, or undefined
 * before it started. skewMs is the server clock minus the local clock.
 */
export function elapsedMs(t: TaskView, now: number, skewMs = 0): number | undefined {
  const local = (iso: string | undefined) => (iso !== undefined ? Date.parse(iso) - skewMs : NaN);
  let start = local(t.startedAt);
  if (Number.isNaN(start)) start = t.seenRunningAt ?? NaN;
  if (Number.isNaN(start)) return undefined;
  let end = now;
  if (isFinal(t.state)) {
    end = local(t.finishedAt);
    // Without the server's finish time, only an end this page watched will do.
    if (Number.isNaN(end) && t.seenRunningAt !== undefined && t.seenFinishedAt !== undefined && t.seenFinishedAt >= t.seenRunningAt) {
      end = t.seenFinishedAt;
    }
    if (Number.isNaN(end)) return undefined;
  }
  return Math.max(0, end - start);
}

/** remainingSeconds is the last ETA, counted down since it arrived. */
export function remainingSeconds(t: TaskView, now: number): number | undefined {
  if (t.state !== "running" || t.etaSeconds === undefined || t.etaReceivedAt === undefined) return undefined;
  return Math.max(0, t.etaSeconds - (now - t.etaReceivedAt) / 1000);
}
