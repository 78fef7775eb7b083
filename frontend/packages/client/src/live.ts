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
//   at-most-once and the snapshot is what makes the final state reliable;
// - streams: a chunk past what the page holds, or a record whose `streams` counts
//   say more than it holds (a reload, a resubscribe), makes it fetch the missing
//   items over HTTP; one fetch at a time per stream, repeated until nothing is missing.

import { io, type Socket } from "socket.io-client";
import { ApiError, type Api, type KindEntry } from "./api.js";
import { AuthEvents, refreshBeforeMs, type RefreshAck, type Tokens } from "./auth.js";

/** TaskApi is the part of Api that Live uses. */
export type TaskApi = Pick<Api, "session" | "listTasks" | "getTask" | "createTask" | "cancelTask" | "getStream"> &
  Partial<Pick<Api, "listKinds">>;
import { connStatus, initialConn, reduceConn, type ConnEvent, type ConnState } from "./connection.js";
import { Events, type ClientToServerEvents, type ServerToClientEvents, type TaskRecord } from "./generated/contract.js";
import { isPayload, isRecord, type TaskStore } from "./state.js";

/** LiveOptions change how Live connects and what it follows. */
export interface LiveOptions {
  /** Tokens for the handshake's auth.token (else the session cookie identifies the socket). */
  tokens?: Tokens;
  /**
   * list: on every (re)connect, list the identity's tasks over HTTP and follow every
   * unfinished one (the web app). Off, only the tasks asked for are followed.
   */
  list?: boolean;
  /** Socket.IO transports, in order (default polling, then websocket). */
  transports?: Array<"polling" | "websocket">;
}

/** Hooks are how Live tells the page that something changed. */
export interface Hooks {
  /** tasks says the store changed (id: the task, or undefined for many). */
  tasks(id?: string): void;
  /** conn says the connection state changed. */
  conn(s: ConnState): void;
  /** kinds says the list of kinds changed. */
  kinds?(kinds: KindEntry[], error?: string): void;
  /** cleared says the set of cleared tasks changed (to remember it). */
  cleared?(ids: string[]): void;
  /** authError says the server refused the token (handshake or refresh). */
  authError?(message: string): void;
}

/** How long a request over the socket may take. */
const ackTimeoutMs = 8000;
/** An unfinished task silent for this long is subscribed again. */
const quietMs = 15000;
/** A queued task is asked again this often, for its place in the queue. */
const queuedQuietMs = 5000;
/** A stream fetch that brought nothing is not repeated for this long. */
const stalledMs = 10000;

export class Live {
  readonly socket: Socket<ServerToClientEvents, ClientToServerEvents>;
  private conn: ConnState;
  private readonly lastSubscribe = new Map<string, number>();
  private readonly inFlight = new Set<string>();
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private retries = 0;
  private watchdog: ReturnType<typeof setInterval> | undefined;
  private readonly fetching = new Set<string>();
  private readonly stalled = new Map<string, number>();
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly followed = new Set<string>();
  private readonly tokens: Tokens | undefined;
  private readonly list: boolean;
  /** The kinds as last listed. */
  kinds: KindEntry[] = [];

  constructor(
    private readonly store: TaskStore,
    private readonly api: TaskApi,
    private readonly hooks: Hooks,
    url?: string,
    options: LiveOptions = {},
  ) {
    this.conn = initialConn(typeof navigator === "undefined" || navigator.onLine !== false);
    this.tokens = options.tokens;
    this.list = options.list ?? true;
    const tokens = this.tokens;
    const opts = {
      path: "/socket.io/",
      transports: options.transports ?? ["polling", "websocket"],
      autoConnect: false,
      reconnectionDelay: 500,
      reconnectionDelayMax: 5000,
      randomizationFactor: 0.5,
      timeout: 10000,
      // Asked on every (re)connect, so a reconnect carries the current token.
      ...(tokens
        ? {
            auth: (cb: (data: object) => void) => {
              tokens.get().then(
                (token) => cb({ token }),
                () => cb({}),
              );
            },
          }
        : {}),
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
      this.scheduleRefresh();
      void this.resync();
    });
    // The token of this socket expired: send a fresh one within the server's grace period.
    (s as unknown as Socket).on(AuthEvents.TokenExpired, () => void this.refreshToken());
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
      if (err.message === "unauthorized" && this.tokens) {
        // The token was refused: the next attempt asks for a new one.
        this.tokens.invalidate();
        const why = (err as { data?: { message?: unknown } }).data?.message;
        this.hooks.authError?.(typeof why === "string" ? why : err.message);
      }
      if (!s.active) this.retryLater(true);
    });
    m.on("reconnect_attempt", (attempt) => this.dispatch({ type: "reconnect_attempt", attempt }));
    m.on("reconnect_error", (err) => this.dispatch({ type: "reconnect_error", message: err.message }));
    m.on("reconnect_failed", () => this.dispatch({ type: "reconnect_failed" }));

    s.on(Events.TaskProgress, (p) => this.event(p, () => this.store.applyProgress(p, Date.now())));
    s.on(Events.TaskStage, (p) => this.event(p, () => this.store.applyStage(p, Date.now())));
    s.on(Events.TaskMetadata, (p) => this.event(p, () => this.store.applyMetadata(p, Date.now())));
    s.on(Events.TaskStream, (p) => {
      this.event(p, () => this.store.applyStream(p, Date.now()));
      if (isPayload(p)) this.fillGaps(p.taskId);
    });
    s.on(Events.TaskCompleted, (p) => {
      this.event(p, () => this.store.applyCompleted(p, Date.now()));
      // An event without the result's details (a worker of the previous release):
      // the record has its file name and type.
      const r = isPayload(p) ? this.store.get(p.taskId)?.result : undefined;
      if (isPayload(p) && r && (r.filename === undefined || r.contentType === undefined)) {
        this.api.getTask(p.taskId).then((rec) => this.snapshot(rec), () => undefined);
      }
    });
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
    this.fillGaps(r.taskId);
  }

  /** fillGaps fetches what the page lacks of the task's streams. */
  fillGaps(id: string): void {
    for (const g of this.store.missing(id)) {
      const key = id + "\n" + g.stream;
      if (this.fetching.has(key)) continue;
      const stalledAt = this.stalled.get(key);
      if (stalledAt !== undefined && Date.now() - stalledAt < stalledMs) continue;
      this.fetching.add(key);
      void this.fetchGap(id, g.stream, g.attempt, g.from).finally(() => this.fetching.delete(key));
    }
  }

  private async fetchGap(id: string, stream: string, attempt: number, from: number): Promise<void> {
    const key = id + "\n" + stream;
    // Bounded: every round either brings items or stops.
    for (let round = 0; round < 100; round++) {
      let page;
      try {
        page = await this.api.getStream(id, stream, from);
      } catch (err) {
        console.warn("taskwire: could not fetch stream", stream, "of", id, err);
        this.stalled.set(key, Date.now());
        return;
      }
      if (this.store.applyFetched(id, stream, attempt, page.from, page.items, Date.now())) this.hooks.tasks(id);
      const next = this.store.missing(id).find((g) => g.stream === stream);
      if (!next || next.attempt !== attempt) {
        this.stalled.delete(key);
        return;
      }
      if (page.items.length === 0) {
        // The record said more than the stream has (yet): ask again later.
        this.stalled.set(key, Date.now());
        return;
      }
      from = next.from;
    }
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
    this.connect();
    if (this.list) {
      void this.refreshKinds();
      await this.refreshList();
    }
  }

  /** connect opens the socket and starts the watchdog (once). */
  connect(): void {
    this.socket.connect();
    this.watchdog ??= setInterval(() => this.checkQuiet(), 5000);
  }

  /** stop closes the connection (tests, page teardown). */
  stop(): void {
    if (this.watchdog !== undefined) clearInterval(this.watchdog);
    this.watchdog = undefined;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    if (this.refreshTimer !== undefined) clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
    this.socket.disconnect();
  }

  /**
   * follow keeps a task followed across reconnects whether the store knows it
   * or not, and asks for its state now (socket, or HTTP while disconnected).
   */
  follow(id: string): void {
    this.followed.add(id);
    if (this.socket.connected) {
      this.subscribe(id, true);
      return;
    }
    this.api.getTask(id).then(
      (rec) => this.snapshot(rec),
      (err: unknown) => {
        if (err instanceof ApiError && err.status === 404) this.gone(id);
        else if (err instanceof ApiError && err.status === 401) this.hooks.authError?.(err.message);
      },
    );
  }

  /** unfollow stops following a task the store does not otherwise keep. */
  unfollow(id: string): void {
    this.followed.delete(id);
  }

  private gone(id: string): void {
    this.lastSubscribe.delete(id);
    this.followed.delete(id);
    this.store.remove(id);
    this.hooks.tasks(id);
  }

  /**
   * scheduleRefresh renews the token shortly before its exp (a JWT with a token
   * function only) and sends it on the live socket.
   */
  private scheduleRefresh(): void {
    if (this.refreshTimer !== undefined) clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
    const t = this.tokens;
    const exp = t?.expiresAt;
    if (!t?.refreshable || exp === undefined) return;
    // Bounded below, so a token that is already due is not refreshed in a loop.
    const delay = Math.max(1000, exp - refreshBeforeMs - Date.now());
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      void this.refreshToken();
    }, Math.min(delay, 2 ** 31 - 1));
  }

  /**
   * refreshToken fetches a new token and sends it on the socket (auth:refresh).
   * It resolves true when the server took it.
   */
  async refreshToken(): Promise<boolean> {
    const t = this.tokens;
    if (!t?.refreshable) return false;
    let token: string;
    try {
      token = await t.fresh();
    } catch (err) {
      this.hooks.authError?.(err instanceof Error ? err.message : String(err));
      this.scheduleRetryRefresh();
      return false;
    }
    if (!this.socket.connected) return false; // the next handshake carries it
    return new Promise<boolean>((resolve) => {
      (this.socket as unknown as Socket).timeout(ackTimeoutMs).emit(AuthEvents.Refresh, { token }, (err: unknown, ack: RefreshAck | undefined) => {
        if (err || !ack || !("ok" in ack && ack.ok)) {
          const e = ack && "error" in ack ? ack.error : undefined;
          if (e) this.hooks.authError?.(e.message ?? e.code);
          this.scheduleRetryRefresh();
          resolve(false);
          return;
        }
        this.scheduleRefresh();
        resolve(true);
      });
    });
  }

  private scheduleRetryRefresh(): void {
    if (this.refreshTimer !== undefined) clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      void this.refreshToken();
    }, 5000);
  }

  /** refreshList applies GET /api/v1/tasks; a failure is logged, or thrown with rethrow. */
  async refreshList(rethrow = false): Promise<void> {
    let list: TaskRecord[];
    try {
      list = await this.api.listTasks();
    } catch (err) {
      if (rethrow) throw err;
      console.warn("taskwire: could not list tasks", err);
      return;
    }
    const now = Date.now();
    let changed = false;
    const ids: string[] = [];
    for (const r of list) {
      if (!isRecord(r)) continue;
      ids.push(r.taskId);
      changed = this.store.applySnapshot(r, now) || changed;
    }
    if (changed) this.hooks.tasks();
    for (const id of ids) this.fillGaps(id);
    // Cleared tasks the server no longer lists cannot come back: forget their ids.
    if (this.store.forgetClearedExcept(ids)) this.hooks.cleared?.(this.store.clearedIds());
  }

  private kindsInFlight: Promise<void> | undefined;

  /** refreshKinds applies GET /api/v1/kinds (one request at a time). */
  refreshKinds(): Promise<void> {
    this.kindsInFlight ??= this.loadKinds().finally(() => (this.kindsInFlight = undefined));
    return this.kindsInFlight;
  }

  private async loadKinds(): Promise<void> {
    if (!this.api.listKinds) return;
    try {
      const kinds = await this.api.listKinds();
      this.kinds = kinds;
      this.hooks.kinds?.(kinds);
    } catch (err) {
      console.warn("taskwire: could not list kinds", err);
      this.hooks.kinds?.(this.kinds, err instanceof Error ? err.message : String(err));
    }
  }

  /** clear hides finished tasks for good (every finished one without ids). */
  clear(ids?: string[]): number {
    let n = 0;
    for (const id of ids ?? this.store.finished()) if (this.store.clear(id)) n++;
    if (n > 0) {
      this.hooks.cleared?.(this.store.clearedIds());
      this.hooks.tasks();
    }
    return n;
  }

  /** resync lists the tasks and follows every unfinished one. */
  async resync(): Promise<void> {
    if (this.list) {
      void this.refreshKinds();
      await this.refreshList();
    }
    if (!this.socket.connected) return;
    const ids = new Set(this.store.unfinished());
    for (const id of this.followed) if (!this.store.get(id)) ids.add(id);
    for (const id of ids) this.subscribe(id, true);
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
        this.gone(id);
      }
    });
  }

  private checkQuiet(): void {
    if (!this.socket.connected) return;
    const now = Date.now();
    for (const id of this.store.unfinished()) {
      const t = this.store.get(id);
      if (!t) continue;
      const quiet = t.state === "queued" ? queuedQuietMs : quietMs;
      if (now - t.updatedAt >= quiet && now - (this.lastSubscribe.get(id) ?? 0) >= quiet) this.subscribe(id, true);
      this.fillGaps(id);
    }
  }

  /**
   * startTask creates a task of kind and follows it; it returns the task id. total
   * is the amount of work the params announce (the kind's total param), if any.
   */
  async startTask(kind: string, params: Record<string, unknown>, total?: number): Promise<string> {
    const socketId = this.socket.connected ? this.socket.id : undefined;
    const created = await this.api.createTask(kind, params, socketId);
    this.store.accepted(created.id, kind, params, Date.now(), total);
    this.hooks.tasks(created.id);
    this.subscribe(created.id, true);
    return created.id;
  }

  /** startExport creates an export of rows rows. */
  startExport(rows: number): Promise<string> {
    return this.startTask("export", { rows }, rows);
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
          this.gone(id);
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
