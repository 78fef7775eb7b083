// createClient: the library's entry point. One client is one identity on one
// server: a socket, a store of the tasks it follows, and the HTTP API.
//
// A task handle's subscribe delivers the task's current state at once (when known)
// and then every change, in seq order: the store drops anything not newer than
// what it holds, takes the snapshot sent on every (re)subscribe, and starts the
// streams over when a new attempt begins. Listeners get copies, so a new object
// means a change (what React needs).
//
// On every reconnect each followed task resumes from the seq it holds (the
// server sends what was missed), a task's final event is confirmed to the
// server once (task:received, the record's deliveredAt), and client.inbox lists
// the finished tasks not marked seen yet.

import { Api, ApiError, type KindEntry, type ViewerOptions, type ViewerToken } from "./api.js";
import { Tokens, type TokenSource } from "./auth.js";
import type { ConnState } from "./connection.js";
import type { InboxEntry, TaskErrorInfo } from "./generated/contract.js";
import { Live } from "./live.js";
import { isFinal, TaskStore, type ResultView, type TaskView } from "./state.js";

/** ClientOptions configure createClient. */
export interface ClientOptions {
  /** The taskwire server ("https://tasks.example.com"); the page's own origin when omitted. */
  url?: string;
  /**
   * The identity: a token (the app's JWT, a viewer token, an anonymous session
   * token) or a function that fetches a fresh one, called again before a JWT's exp
   * and when the server refuses or expires the token. Omitted: the session cookie
   * of the page's own server.
   */
  token?: TokenSource;
  /** Socket.IO transports, in order (default polling, then websocket). */
  transports?: Array<"polling" | "websocket">;
  /**
   * receipts: confirm each task's final event to the server (task:received),
   * which sets the record's deliveredAt. Default true; a viewer token never does.
   */
  receipts?: boolean;
}

/** Inbox is the identity's finished tasks that it has not marked seen. */
export interface Inbox {
  /** list fetches the unseen entries (newest first) and keeps them live from then on. */
  list(): Promise<InboxEntry[]>;
  /** items returns the entries as last known, newest first. */
  items(): InboxEntry[];
  /**
   * subscribe calls listener with the entries at once and on every change (an
   * inbox:item pushed, a list, an ack), after listing them. It returns the
   * function that unsubscribes.
   */
  subscribe(listener: (items: InboxEntry[]) => void): () => void;
  /** ack marks entries seen (the records' seenAt); it resolves with the ids the server marked. */
  ack(taskIds: string[]): Promise<string[]>;
}

/** TaskListener receives a task's state. */
export type TaskListener = (task: TaskView) => void;

/** TaskResult is a completed task's result, with a way to download it. */
export interface TaskResult extends ResultView {
  /** download fetches the result file with this client's identity. */
  download(): Promise<Response>;
}

/** TaskError is the rejection of result() for a task that failed or was cancelled. */
export class TaskError extends Error {
  constructor(
    readonly task: TaskView,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "TaskError";
  }
}

/** TaskHandle is one task, followed live while anything subscribes to it. */
export interface TaskHandle {
  readonly id: string;
  /** get returns the task's state as last known, if any. */
  get(): TaskView | undefined;
  /**
   * subscribe calls listener with the current state at once (when known) and on
   * every change; onError is called when the task does not exist (or is not this
   * identity's; ApiError code not_found), or when the server refuses a fixed token
   * (code unauthorized: an expired viewer token, for instance). It returns the
   * function that unsubscribes.
   */
  subscribe(listener: TaskListener, onError?: (err: Error) => void): () => void;
  /** cancel asks the server to cancel the task. */
  cancel(): Promise<void>;
  /**
   * result waits for the task to end: it resolves with the result of a completed
   * task and rejects with a TaskError for a failed or cancelled one.
   */
  result(opts?: { timeoutMs?: number }): Promise<TaskResult>;
  /** viewer creates a read-only token for this task (owner only). */
  viewer(opts?: ViewerOptions): Promise<ViewerToken>;
}

/** TaskwireClient is what createClient returns. */
export interface TaskwireClient {
  /** start creates a task of kind with params and follows it. */
  start(kind: string, params: Record<string, unknown>): Promise<TaskHandle>;
  /** task returns the handle of a task by id. */
  task(id: string): TaskHandle;
  /** tasks lists the identity's tasks (newest first) and follows the unfinished ones. */
  tasks(): Promise<TaskView[]>;
  /** onTasks calls listener with every known task (newest first) on each change. */
  onTasks(listener: (tasks: TaskView[]) => void): () => void;
  /** kinds lists the kinds the workers serve. */
  kinds(): Promise<KindEntry[]>;
  /** onConnection calls listener with the connection's state at once and on each change. */
  onConnection(listener: (s: ConnState) => void): () => void;
  /** The inbox: finished tasks not marked seen, live. */
  readonly inbox: Inbox;
  /** close disconnects; the client is not used afterwards. */
  close(): void;
  /** The parts the client is built of, for apps that need more (the web app). */
  readonly api: Api;
  readonly store: TaskStore;
  readonly live: Live;
}

/** copyTask returns a copy of t that later changes of the store do not touch. */
function copyTask(t: TaskView): TaskView {
  const streams: TaskView["streams"] = {};
  for (const [k, v] of Object.entries(t.streams)) streams[k] = { ...v, items: v.items.slice() };
  return {
    ...t,
    streams,
    metadata: t.metadata ? { ...t.metadata } : undefined,
    result: t.result ? { ...t.result } : undefined,
  };
}

function keyOf(t: TaskView): string {
  const vs = Object.entries(t.streams).map(([k, v]) => k + ":" + v.version + ":" + v.known);
  return `${t.seq}|${t.updatedAt}|${t.state}|${vs.join(",")}`;
}

class Client implements TaskwireClient {
  readonly api: Api;
  readonly store = new TaskStore();
  readonly live: Live;
  private readonly listeners = new Map<string, Set<{ fn: TaskListener; err: ((e: Error) => void) | undefined }>>();
  private readonly delivered = new Map<string, string>();
  private readonly listListeners = new Set<(tasks: TaskView[]) => void>();
  private readonly connListeners = new Set<(s: ConnState) => void>();
  private readonly inboxListeners = new Set<(items: InboxEntry[]) => void>();
  readonly inbox: Inbox;
  private ready: Promise<void> | undefined;
  private closed = false;

  constructor(opts: ClientOptions) {
    const url = opts.url?.replace(/\/+$/, "");
    const tokens = opts.token !== undefined ? new Tokens(opts.token) : undefined;
    this.api = new Api((url ?? "") + "/api/v1", tokens);
    this.live = new Live(
      this.store,
      this.api,
      {
        tasks: (id) => this.changed(id),
        conn: (s) => {
          for (const l of this.connListeners) l(s);
        },
        authError: (message) => {
          // A fixed token the server refuses stays refused: say so to every subscriber.
          if (tokens?.refreshable) return;
          const err = new ApiError(401, "unauthorized", message);
          for (const subs of this.listeners.values()) for (const s of subs) s.err?.(err);
        },
        inbox: (items) => {
          for (const l of this.inboxListeners) l(items);
        },
      },
      url,
      {
        ...(tokens ? { tokens } : {}),
        list: false,
        inbox: false,
        ...(opts.transports ? { transports: opts.transports } : {}),
        ...(opts.receipts !== undefined ? { receipts: opts.receipts } : {}),
      },
    );
    this.inbox = {
      list: async () => {
        await this.ensureConnected();
        return this.live.refreshInbox(true);
      },
      items: () => this.live.inbox.items(),
      subscribe: (listener) => {
        this.inboxListeners.add(listener);
        listener(this.live.inbox.items());
        this.inbox.list().catch((err: unknown) => console.warn("taskwire: could not list the inbox", err));
        return () => this.inboxListeners.delete(listener);
      },
      ack: async (ids) => {
        await this.ensureConnected();
        return this.live.ackInbox(ids);
      },
    };
  }

  /** ensureConnected connects on first use; it resolves once requests may be sent. */
  private ensureConnected(): Promise<void> {
    if (this.closed) return Promise.reject(new Error("taskwire: the client is closed"));
    this.ready ??= this.live.start().catch((err: unknown) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }

  private changed(id: string | undefined): void {
    const ids = id !== undefined ? [id] : [...this.listeners.keys()];
    for (const tid of ids) {
      const subs = this.listeners.get(tid);
      if (!subs || subs.size === 0) continue;
      const t = this.store.get(tid);
      if (!t) {
        this.delivered.delete(tid);
        const err = new ApiError(404, "not_found", `task ${tid} not found`);
        for (const s of subs) s.err?.(err);
        continue;
      }
      const key = keyOf(t);
      if (this.delivered.get(tid) === key) continue;
      this.delivered.set(tid, key);
      const copy = copyTask(t);
      for (const s of subs) s.fn(copy);
    }
    if (this.listListeners.size > 0) {
      const list = this.store.list().map(copyTask);
      for (const l of this.listListeners) l(list);
    }
  }

  async start(kind: string, params: Record<string, unknown>): Promise<TaskHandle> {
    await this.ensureConnected();
    const id = await this.live.startTask(kind, params);
    return this.task(id);
  }

  task(id: string): TaskHandle {
    return {
      id,
      get: () => {
        const t = this.store.get(id);
        return t ? copyTask(t) : undefined;
      },
      subscribe: (fn, err) => this.subscribe(id, fn, err),
      cancel: () => this.live.cancel(id),
      result: (opts) => this.result(id, opts?.timeoutMs),
      viewer: (opts) => this.api.createViewer(id, opts),
    };
  }

  private subscribe(id: string, fn: TaskListener, err?: (e: Error) => void): () => void {
    this.ensureConnected().catch(() => undefined);
    let subs = this.listeners.get(id);
    if (!subs) this.listeners.set(id, (subs = new Set()));
    const entry = { fn, err };
    subs.add(entry);
    const t = this.store.get(id);
    if (t) fn(copyTask(t));
    this.live.follow(id);
    return () => {
      subs.delete(entry);
      if (subs.size === 0) {
        this.listeners.delete(id);
        this.delivered.delete(id);
        this.live.unfollow(id);
      }
    };
  }

  private result(id: string, timeoutMs?: number): Promise<TaskResult> {
    return new Promise<TaskResult>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      let unsubscribe: (() => void) | undefined;
      let settled = false;
      const done = (f: () => void) => {
        if (settled) return;
        settled = true;
        if (timer !== undefined) clearTimeout(timer);
        f();
        queueMicrotask(() => unsubscribe?.());
      };
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => done(() => reject(new Error(`taskwire: task ${id} did not finish within ${timeoutMs} ms`))), timeoutMs);
      }
      unsubscribe = this.subscribe(
        id,
        (t) => {
          if (!isFinal(t.state)) return;
          if (t.state === "completed" && t.result) {
            const r = t.result;
            done(() => resolve({ ...r, download: () => this.api.download(r.url) }));
          } else if (t.state === "failed") {
            const e: TaskErrorInfo | undefined = t.error;
            done(() => reject(new TaskError(t, e?.code ?? "failed", e?.message ?? `task ${id} failed`)));
          } else if (t.state === "cancelled") {
            done(() => reject(new TaskError(t, "cancelled", `task ${id} was cancelled`)));
          }
        },
        (err) => done(() => reject(err)),
      );
    });
  }

  async tasks(): Promise<TaskView[]> {
    await this.ensureConnected();
    await this.live.refreshList(true);
    for (const id of this.store.unfinished()) this.live.subscribe(id, true);
    return this.store.list().map(copyTask);
  }

  onTasks(listener: (tasks: TaskView[]) => void): () => void {
    this.listListeners.add(listener);
    return () => this.listListeners.delete(listener);
  }

  async kinds(): Promise<KindEntry[]> {
    return this.api.listKinds();
  }

  onConnection(listener: (s: ConnState) => void): () => void {
    this.connListeners.add(listener);
    listener(this.live.connState);
    return () => this.connListeners.delete(listener);
  }

  close(): void {
    this.closed = true;
    this.live.stop();
  }
}

/** createClient returns a client of the taskwire server at opts.url for the identity of opts.token. */
export function createClient(opts: ClientOptions = {}): TaskwireClient {
  return new Client(opts);
}
