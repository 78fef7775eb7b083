// Live updates: the Socket.IO connection, the task events, and the resynchronisation
// that keeps the page true after reloads, reconnects and lost messages.
//
// Rules:
// - on every (re)connect: list this identity's tasks over HTTP and task:subscribe to
//   every unfinished one (a new connection is in no task room; the ack is the
//   current snapshot);
// - after creating a task: subscribe too (the POST's socketId may name a socket that
//   has just reconnected under another id, and the snapshot fills static fields);
// - a task that has said nothing for a while is subscribed again, because pub/sub is
//   at-most-once and the snapshot is what makes the final state reliable.

import { io, type Socket } from "socket.io-client";
import { ApiError, type Api } from "./api";

/** TaskApi is the part of Api that Live uses. */
export type TaskApi = Pick<Api, "session" | "listTasks" | "getTask" | "createExport" | "cancelTask">;
import { connStatus, initialConn, reduceConn, type ConnEvent, type ConnState } from "./connection";
import { Events, type ClientToServerEvents, type ServerToClientEvents, type TaskRecord } from "./generated/contract";
import { isPayload, isRecord, type TaskStore } from "./state";

/** Hooks are how Live tells the page that something changed. */
export interface Hooks {
  /** tasks says the store changed (id: the task, or undefined for many). */
  tasks(id?: string): void;
  /** conn says the connection state changed. */
  conn(s: ConnState): void;
}

/** How long a request over the socket may take. */
const ackTimeoutMs = 8000;
/** An unfinished task silent for this long is subscribed again. */
const quietMs = 15000;

export class Live {
  readonly socket: Socket<ServerToClientEvents, ClientToServerEvents>;
  private conn: ConnState;
  private readonly lastSubscribe = new Map<string, number>();
  private readonly inFlight = new Set<string>();
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private retries = 0;
  private watchdog: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly store: TaskStore,
    private readonly api: TaskApi,
    private readonly hooks: Hooks,
    url?: string,
  ) {
    this.conn = initialConn(typeof navigator === "undefined" || navigator.onLine !== false);
    const opts = {
      path: "/socket.io/",
      transports: ["polling", "websocket"],
      autoConnect: false,
      reconnectionDelay: 500,
      reconnectionDelayMax: 5000,
      randomizationFactor: 0.5,
      timeout: 10000,
    };
    // Same origin in the page; an explicit server in tests.
    this.socket = url === undefined ? io(opts) : io(url, opts);
    this.wire();
  }

  /** connState returns the current connection state. */
  get connState(): ConnState {
    return this.conn;
  }

  private dispatch(e: ConnEvent): void {
    const next = reduceConn(this.conn, e);
    if (JSON.stringify(next) !== JSON.stringify(this.conn)) {
      this.conn = next;
      this.hooks.conn(next);
    }
  }

  private wire(): void {
    const s = this.socket;
    const m = s.io;
    s.on("connect", () => {
      this.retries = 0;
      this.dispatch({ type: "connect" });
      void this.resync();
    });
    s.on("disconnect", (reason) => {
      // "io server disconnect" and "io client disconnect" end the client's own
      // retries; the server kind is retried here.
      const willRetry = s.active || reason === "io server disconnect";
      this.dispatch({ type: "disconnect", reason, willRetry });
      if (!s.active && reason === "io server disconnect") this.retryLater(false);
    });
    s.on("connect_error", (err) => {
      // The client retries network errors itself (s.active). A refusal by the server
      // (an expired session, for instance) stops it: renew the session and retry.
      this.dispatch({ type: "connect_error", message: err.message, willRetry: true });
      if (!s.active) this.retryLater(true);
    });
    m.on("reconnect_attempt", (attempt) => this.dispatch({ type: "reconnect_attempt", attempt }));
    m.on("reconnect_error", (err) => this.dispatch({ type: "reconnect_error", message: err.message }));
    m.on("reconnect_failed", () => this.dispatch({ type: "reconnect_failed" }));

    s.on(Events.TaskProgress, (p) => this.event(p, () => this.store.applyProgress(p, Date.now())));
    s.on(Events.TaskCompleted, (p) => this.event(p, () => this.store.applyCompleted(p, Date.now())));
    s.on(Events.TaskFailed, (p) => this.event(p, () => this.store.applyFailed(p, Date.now())));
    s.on(Events.TaskCancelled, (p) => this.event(p, () => this.store.applyCancelled(p, Date.now())));
    s.on(Events.TaskState, (r) => {
      if (isRecord(r)) this.snapshot(r);
    });

    if (typeof window !== "undefined") {
      window.addEventListener("online", () => {
        this.dispatch({ type: "online" });
        // The client's back-off is at most a few seconds; restart only a client
        // that stopped trying.
        if (!s.active) s.connect();
      });
      window.addEventListener("offline", () => this.dispatch({ type: "offline" }));
      document.addEventListener("visibilitychange", () => {
        // Another tab may have started tasks: pick them up when this one is looked at.
        if (document.visibilityState === "visible") void this.resync();
      });
    }
  }

  private event(p: unknown, apply: () => boolean): void {
    if (!isPayload(p)) {
      console.warn("taskwire: ignored an event without taskId/seq", p);
      return;
    }
    if (apply()) this.hooks.tasks(p.taskId);
  }

  private snapshot(r: TaskRecord): void {
    if (this.store.applySnapshot(r, Date.now())) this.hooks.tasks(r.taskId);
  }

  private retryLater(renewSession: boolean): void {
    if (this.retryTimer !== undefined) return;
    const delay = Math.min(10000, 500 * 2 ** this.retries) * (0.5 + Math.random());
    this.retries++;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      const go = () => {
        this.dispatch({ type: "manual_retry" });
        this.socket.connect();
      };
      if (renewSession) this.api.session().then(go, go);
      else go();
    }, delay);
  }

  /** start gets a session, shows the tasks and connects. */
  async start(): Promise<void> {
    await this.api.session();
    this.socket.connect();
    await this.refreshList();
    this.watchdog = setInterval(() => this.checkQuiet(), 5000);
  }

  /** stop closes the connection (tests, page teardown). */
  stop(): void {
    if (this.watchdog !== undefined) clearInterval(this.watchdog);
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.socket.disconnect();
  }

  /** refreshList applies GET /api/v1/tasks. */
  async refreshList(): Promise<void> {
    let list: TaskRecord[];
    try {
      list = await this.api.listTasks();
    } catch (err) {
      console.warn("taskwire: could not list tasks", err);
      return;
    }
    const now = Date.now();
    let changed = false;
    for (const r of list) {
      if (isRecord(r)) changed = this.store.applySnapshot(r, now) || changed;
    }
    if (changed) this.hooks.tasks();
  }

  /** resync lists the tasks and follows every unfinished one. */
  async resync(): Promise<void> {
    await this.refreshList();
    if (!this.socket.connected) return;
    for (const id of this.store.unfinished()) this.subscribe(id, true);
  }

  /** subscribe follows a task and applies its snapshot. */
  subscribe(id: string, force = false): void {
    if (!this.socket.connected || this.inFlight.has(id)) return;
    if (!force && Date.now() - (this.lastSubscribe.get(id) ?? 0) < quietMs) return;
    this.inFlight.add(id);
    this.lastSubscribe.set(id, Date.now());
    this.socket.timeout(ackTimeoutMs).emit(Events.TaskSubscribe, { taskId: id }, (err, reply) => {
      this.inFlight.delete(id);
      if (err) return; // no answer in time: the watchdog or the next reconnect asks again
      if (isRecord(reply)) {
        this.snapshot(reply);
        return;
      }
      if (reply?.error?.code === "not_found") {
        // Expired, or not ours: nothing true can be shown about it.
        this.lastSubscribe.delete(id);
        if (this.store.remove(id)) this.hooks.tasks(id);
      }
    });
  }

  private checkQuiet(): void {
    if (!this.socket.connected) return;
    const now = Date.now();
    for (const id of this.store.unfinished()) {
      const t = this.store.get(id);
      if (t && now - t.updatedAt >= quietMs) this.subscribe(id);
    }
  }

  /** startExport creates an export task and follows it; it returns the task id. */
  async startExport(rows: number): Promise<string> {
    const socketId = this.socket.connected ? this.socket.id : undefined;
    const created = await this.api.createExport(rows, socketId);
    this.store.accepted(created.id, "export", rows, Date.now());
    this.hooks.tasks(created.id);
    this.subscribe(created.id, true);
    return created.id;
  }

  /** cancel asks the server to cancel a task and applies the answer. */
  async cancel(id: string): Promise<void> {
    try {
      this.snapshot(await this.api.cancelTask(id));
    } catch (err) {
      if (err instanceof ApiError && (err.code === "task_finished" || err.code === "not_found")) {
        // It finished (or vanished) meanwhile: show what it is now.
        try {
          this.snapshot(await this.api.getTask(id));
        } catch {
          if (this.store.remove(id)) this.hooks.tasks(id);
        }
        return;
      }
      throw err;
    }
  }

  /** status is the connection indicator's value. */
  get status() {
    return connStatus(this.conn);
  }
}
