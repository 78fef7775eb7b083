// The client-side model of the tasks of this identity. Pure: no DOM, no network,
// no clock (every method that needs the time takes it), so it is unit-tested.
//
// Ordering rule of the contract: every event and every snapshot of a task carries a
// per-task sequence number (seq). The store applies anything whose seq is greater
// than the one it holds and drops the rest. A snapshot that is not newer still fills
// the fields events never carry (kind, createdAt, the requested rows...), because the
// events of a task this tab created can arrive before its first snapshot.
//
// Attempts: every event says which attempt published it. One of a higher attempt
// than held starts the task over, so the streams and metadata of older attempts are
// dropped. Stream chunks are merged by offset (see streams.ts); what is missing is
// listed by missing() for the page to fetch.

import type {
  Cancelled,
  Completed,
  Failed,
  Metadata,
  Progress,
  Stage,
  Stream,
  TaskErrorInfo,
  TaskRecord,
  TaskResult,
  TaskState,
} from "./generated/contract.js";
import { held, maxHeldItems, mergeChunk, mergeFetched, missingFrom, newStream, noteKnown, type StreamView } from "./streams.js";

/** What the page knows of a task's result. */
export interface ResultView {
  url: string;
  rows: number;
  bytes: number;
  filename: string | undefined;
  contentType: string | undefined;
  /** The value of a JSON result ("value" in hasValue when there is one). */
  value?: unknown;
}

function resultView(r: TaskResult | undefined, url?: string, rows?: number, bytes?: number): ResultView | undefined {
  if (!r && url === undefined) return undefined;
  const v: ResultView = {
    url: r?.url || url || "",
    rows: r?.rows ?? rows ?? 0,
    bytes: r?.bytes ?? bytes ?? 0,
    filename: r?.filename || undefined,
    contentType: r?.contentType || undefined,
  };
  if (r && "value" in r && r.value !== undefined) v.value = r.value;
  return v;
}

/** isJsonResult reports whether a result is a JSON value rather than a file. */
export function isJsonResult(r: ResultView): boolean {
  return "value" in r;
}

/** TaskView is one task as the page shows it. */
export interface TaskView {
  id: string;
  /** Unknown until the first snapshot. */
  kind: string | undefined;
  state: TaskState;
  /** The highest seq applied; -1 before anything from the server. */
  seq: number;
  percent: number;
  done: number;
  total: number;
  stage: string;
  stageMessage: string;
  /** The attempt the streams and metadata belong to (0: not told yet). */
  attempt: number;
  /** The merged metadata of the attempt. */
  metadata: Record<string, unknown> | undefined;
  /** The streams of the attempt, by name. */
  streams: Record<string, StreamView>;
  /** For a queued task: how many tasks of its kind are ahead (read time). */
  queuePosition: number | undefined;
  /** No live worker served the kind when the task was created. */
  noLiveWorker: boolean;
  /** Seconds left as last reported, and the local time it was received. */
  etaSeconds: number | undefined;
  etaReceivedAt: number | undefined;
  attempts: number;
  maxAttempts: number;
  nextAttemptAt: string | undefined;
  cancelRequested: boolean;
  /** The params the task was started with. */
  params: unknown;
  /** The amount of work announced at creation (the kind's total param), if any. */
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

function rowsOf(params: unknown, key = "rows"): number | undefined {
  if (typeof params === "object" && params !== null) {
    const r = (params as Record<string, unknown>)[key];
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
    stageMessage: "",
    attempt: 0,
    metadata: undefined,
    streams: {},
    queuePosition: undefined,
    noLiveWorker: false,
    etaSeconds: undefined,
    etaReceivedAt: undefined,
    attempts: 0,
    maxAttempts: 0,
    nextAttemptAt: undefined,
    cancelRequested: false,
    params: undefined,
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

function asObject(v: unknown): Record<string, unknown> | undefined {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/** signature is what change detection compares: the task without its stream items. */
function signature(t: TaskView): string {
  const streams: Record<string, [number, number, number]> = {};
  for (const [k, v] of Object.entries(t.streams)) streams[k] = [v.start, v.items.length, v.known];
  return JSON.stringify({ ...t, streams, updatedAt: 0 });
}

/** Gap is a part of a stream the page must fetch. */
export interface Gap {
  taskId: string;
  stream: string;
  from: number;
  attempt: number;
}

/** TaskStore holds the tasks of this identity, keyed by id. */
export class TaskStore {
  private readonly tasks = new Map<string, TaskView>();
  private readonly cleared = new Set<string>();

  constructor(cleared: Iterable<string> = []) {
    for (const id of cleared) this.cleared.add(id);
  }

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

  /** finished returns the ids of the tasks in a final state. */
  finished(): string[] {
    return [...this.tasks.values()].filter((t) => isFinal(t.state)).map((t) => t.id);
  }

  /** remove forgets a task (for instance one the server no longer knows). */
  remove(id: string): boolean {
    return this.tasks.delete(id);
  }

  /**
   * clear hides a finished task for good: it is forgotten and whatever the server
   * says of it later is ignored. It returns false for an unfinished task.
   */
  clear(id: string): boolean {
    const t = this.tasks.get(id);
    if (!t || !isFinal(t.state)) return false;
    this.tasks.delete(id);
    this.cleared.add(id);
    return true;
  }

  /** clearedIds returns the ids of the cleared tasks, to remember them. */
  clearedIds(): string[] {
    return [...this.cleared];
  }

  /**
   * forgetClearedExcept drops the cleared ids not in ids (the server's list): tasks
   * the server no longer lists never come back, so their ids need no keeping.
   */
  forgetClearedExcept(ids: Iterable<string>): boolean {
    const keep = new Set(ids);
    let changed = false;
    for (const id of this.cleared) {
      if (!keep.has(id)) {
        this.cleared.delete(id);
        changed = true;
      }
    }
    return changed;
  }

  /** isCleared reports whether the task was cleared. */
  isCleared(id: string): boolean {
    return this.cleared.has(id);
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
   * overrides what the server already said about the task. total is the amount of
   * work the params announce (the kind's total param), when there is one.
   */
  accepted(id: string, kind: string, params: unknown, now: number, total?: number): TaskView {
    const t = this.entry(id, now);
    t.kind ??= kind;
    t.params ??= params;
    if (total !== undefined) t.rows ??= total;
    if (t.total === 0 && t.seq < 0 && total !== undefined) t.total = total;
    return t;
  }

  /**
   * startAttempt makes attempt the current one when it is newer: the streams and the
   * metadata of older attempts are void.
   */
  private startAttempt(t: TaskView, attempt: number | undefined): void {
    if (attempt === undefined || !Number.isInteger(attempt) || attempt <= t.attempt) return;
    if (t.attempt > 0) {
      t.streams = {};
      t.metadata = undefined;
    }
    t.attempt = attempt;
  }

  /**
   * applySnapshot applies a task record (task:state, GET, DELETE, subscribe ack).
   * It returns whether anything changed.
   */
  applySnapshot(r: TaskRecord, now: number): boolean {
    if (this.cleared.has(r.taskId)) return false;
    const existed = this.tasks.has(r.taskId);
    const t = this.entry(r.taskId, now);
    const before = signature(t);

    // Static fields: filled whatever the seq.
    t.kind ??= r.kind;
    t.createdAt ??= r.createdAt;
    t.params ??= r.params;
    t.rows ??= rowsOf(r.params);
    if (t.maxAttempts === 0) t.maxAttempts = r.maxAttempts;
    if (r.noLiveWorker) t.noLiveWorker = true;

    if (r.seq > t.seq) {
      this.startAttempt(t, r.attempts);
      t.seq = r.seq;
      t.state = r.state;
      t.percent = clampPercent(r.percent);
      t.done = r.done;
      t.total = r.total;
      t.stage = r.stage ?? "";
      t.stageMessage = r.stageMessage ?? "";
      t.etaSeconds = r.etaSeconds;
      t.etaReceivedAt = r.etaSeconds !== undefined ? now : undefined;
      t.attempts = r.attempts;
      t.maxAttempts = r.maxAttempts;
      t.nextAttemptAt = r.nextAttemptAt;
      t.cancelRequested = r.cancelRequested ?? false;
      t.startedAt = r.startedAt;
      t.finishedAt = r.finishedAt;
      t.result = resultView(r.result);
      t.error = r.error;
      const md = asObject(r.metadata);
      if (md) t.metadata = md;
    } else if (r.seq === t.seq) {
      // The same state as held: only fill what the events did not carry.
      t.startedAt ??= r.startedAt;
      t.finishedAt ??= r.finishedAt;
      if (t.result && r.result) {
        t.result.filename ??= r.result.filename || undefined;
        t.result.contentType ??= r.result.contentType || undefined;
        if (!("value" in t.result) && r.result.value !== undefined) t.result.value = r.result.value;
      }
      t.result ??= resultView(r.result);
      t.error ??= r.error;
      if (t.attempts === 0) t.attempts = r.attempts;
      t.metadata ??= asObject(r.metadata);
      if (t.stageMessage === "" && r.stage === t.stage) t.stageMessage = r.stageMessage ?? "";
    }
    // Stream counts of the current attempt say what exists, whatever the seq: what
    // the page lacks is fetched.
    if (r.streams && (t.attempt === 0 || r.attempts === t.attempt)) {
      if (t.attempt === 0 && r.attempts > 0) t.attempt = r.attempts;
      for (const [name, count] of Object.entries(r.streams)) {
        if (typeof count !== "number") continue;
        const st = (t.streams[name] ??= newStream());
        noteKnown(st, count);
      }
    }
    // The place in the queue is computed on every read: take it from any snapshot.
    t.queuePosition = t.state === "queued" && typeof r.queuePosition === "number" ? r.queuePosition : t.state === "queued" ? t.queuePosition : undefined;
    // A cancel request does not advance seq (DELETE answers with the record as it
    // was, flag set), and it is never withdrawn: take it from any snapshot.
    if (r.cancelRequested && !isFinal(t.state)) t.cancelRequested = true;
    this.noteState(t, now);
    const changed = !existed || signature(t) !== before;
    if (changed) t.updatedAt = now;
    return changed;
  }

  /**
   * replaceSnapshot applies a record that is authoritative (a resume the history
   * could not complete): a view newer than the record (the server lost events it
   * had sent) is dropped and built again from the record, streams included.
   */
  replaceSnapshot(r: TaskRecord, now: number): boolean {
    const t = this.tasks.get(r.taskId);
    if (t && r.seq < t.seq) this.tasks.delete(r.taskId);
    return this.applySnapshot(r, now) || (t !== undefined && r.seq < t.seq);
  }

  /** applyProgress applies a task:progress event. */
  applyProgress(p: Progress, now: number): boolean {
    const t = this.fresh(p, now);
    if (!t) return false;
    t.state = "running";
    t.queuePosition = undefined;
    t.percent = clampPercent(p.percent);
    t.done = p.done;
    t.total = p.total;
    if (p.stage !== t.stage) t.stageMessage = "";
    t.stage = p.stage;
    if (p.stageMessage !== undefined) t.stageMessage = p.stageMessage;
    t.etaSeconds = p.etaSeconds;
    t.etaReceivedAt = p.etaSeconds !== undefined ? now : undefined;
    t.nextAttemptAt = undefined;
    if (p.attempt !== undefined && p.attempt > t.attempts) t.attempts = p.attempt;
    this.noteState(t, now);
    return true;
  }

  /** applyStage applies a task:stage event. */
  applyStage(p: Stage, now: number): boolean {
    const t = this.fresh(p, now);
    if (!t) return false;
    if (!isFinal(t.state)) t.state = "running";
    t.queuePosition = undefined;
    t.stage = p.stage;
    t.stageMessage = p.message ?? "";
    this.noteState(t, now);
    return true;
  }

  /** applyMetadata applies a task:metadata event (the whole merged object). */
  applyMetadata(p: Metadata, now: number): boolean {
    const t = this.fresh(p, now);
    if (!t) return false;
    const md = asObject(p.metadata);
    t.metadata = md ?? t.metadata;
    return true;
  }

  /**
   * applyStream applies a task:stream event: its items are merged by offset. A
   * chunk past what is held leaves a gap, which missing() then lists.
   */
  applyStream(p: Stream, now: number): boolean {
    const t = this.fresh(p, now);
    if (!t) return false;
    if (typeof p.stream !== "string" || p.stream === "") return true;
    const st = (t.streams[p.stream] ??= newStream());
    mergeChunk(st, p.offset, Array.isArray(p.items) ? p.items : []);
    return true;
  }

  /**
   * applyFetched merges an answer of the stream endpoint, asked for attempt. An
   * answer for an attempt that is no longer current is dropped.
   */
  applyFetched(id: string, stream: string, attempt: number, from: number, items: readonly unknown[], now: number): boolean {
    const t = this.tasks.get(id);
    if (!t || t.attempt !== attempt) return false;
    const st = (t.streams[stream] ??= newStream());
    const changed = mergeFetched(st, from, items, maxHeldItems);
    if (changed) t.updatedAt = now;
    return changed;
  }

  /** missing lists the parts of streams that the server has and the page lacks. */
  missing(id: string): Gap[] {
    const t = this.tasks.get(id);
    if (!t) return [];
    const out: Gap[] = [];
    for (const [name, st] of Object.entries(t.streams)) {
      const from = missingFrom(st);
      if (from !== undefined) out.push({ taskId: id, stream: name, from, attempt: t.attempt });
    }
    return out;
  }

  /** streamCount is how many items of a stream the page has seen. */
  streamCount(id: string, stream: string): number {
    const st = this.tasks.get(id)?.streams[stream];
    return st ? held(st) : 0;
  }

  /** applyCompleted applies a task:completed event. */
  applyCompleted(c: Completed, now: number): boolean {
    const t = this.fresh(c, now);
    if (!t) return false;
    t.state = "completed";
    t.percent = 100;
    if (c.rows > 0 || t.total === 0) {
      t.done = c.rows;
      t.total = c.rows;
    } else {
      t.done = t.total;
    }
    t.etaSeconds = undefined;
    t.etaReceivedAt = undefined;
    t.nextAttemptAt = undefined;
    t.cancelRequested = false;
    t.queuePosition = undefined;
    t.error = undefined;
    t.result = resultView(c.result, c.resultUrl, c.rows, c.bytes);
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
    t.queuePosition = undefined;
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
    t.queuePosition = undefined;
    this.noteState(t, now);
    return true;
  }

  /** fresh returns the entry an event applies to, or undefined when it is stale. */
  private fresh(p: { taskId: string; seq: number; attempt?: number }, now: number): TaskView | undefined {
    if (this.cleared.has(p.taskId)) return undefined;
    const t = this.entry(p.taskId, now);
    if (p.seq <= t.seq) return undefined;
    t.seq = p.seq;
    t.updatedAt = now;
    this.startAttempt(t, p.attempt);
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
