// Live updates: the Socket.IO connection, the task events, and the resynchronisation
// that keeps the page true after reloads, reconnects and lost messages.
//
// Rules:
// - on every (re)connect: task:subscribe to every unfinished task with since, the
//   last seq held (a new connection is in no task room; the ack brings the record
//   and the events missed, see resume.ts), then list this identity's tasks over
//   HTTP and subscribe to the unfinished ones not known yet;
// - while a task's resuming subscribe is pending, its live events are kept and
//   applied after the ack's, each exactly once, in seq order;
// - once a task's final event (or a final record) came over the socket, a delivery
//   receipt (task:received) says so, once per task; a viewer token, whose identity
//   owns no task, sends none;
// - the inbox (finished tasks not marked seen) is listed over HTTP on every
//   (re)connect once asked for, and kept live with inbox:item;
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
  Partial<Pick<Api, "listKinds" | "listInbox" | "ackInbox" | "getEvents">>;
import { connStatus, initialConn, reduceConn, type ConnEvent, type ConnState } from "./connection.js";
import {
  Events,
  type ClientToServerEvents,
  type InboxEntry,
  type ServerToClientEvents,
  type SubscribeAck,
  type SubscribeRequest,
  type TaskRecord,
} from "./generated/contract.js";
import { InboxList } from "./inbox.js";
import { Kept, planResume } from "./resume.js";
import { isFinal, isPayload, isRecord, type TaskStore } from "./state.js";

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
  /**
   * receipts: confirm the final event of every task with task:received (default
   * true; never with a viewer token, whose receipts the server refuses).
   */
  receipts?: boolean;
  /** inbox: list the inbox on every (re)connect from the start (default: as list). */
  inbox?: boolean;
}

/** The events that change a task, applied by the store. */
const taskEvents = [
  Events.TaskProgress,
  Events.TaskStage,
  Events.TaskMetadata,
  Events.TaskStream,
  Events.TaskCompleted,
  Events.TaskFailed,
  Events.TaskCancelled,
] as const;

/** Answers of task:received that say this identity cannot confirm anything. */
const receiptRefusals = new Set(["forbidden", "unauthorized"]);

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
  /** inbox says the inbox changed: the unseen finished tasks, newest first. */
  inbox?(items: InboxEntry[]): void;
  /** received says the server took the delivery receipt of a task (deliveredAt: the first one's time). */
  received?(id: string, deliveredAt: string): void;
}

/** How long a request over the socket may take. */
const ackTimeoutMs = 8000;
/** An unfinished task silent for this long is subscribed again. */
const quietMs = 15000;
/** A queued task is asked again this often, for its place in the queue. */
const queuedQuietMs = 5000;
/** A stream fetch that brought nothing is not repeated for this long. */
const stalledMs = 10000;
/** How many times a subscribe that got no answer is sent again at once. */
const subscribeRetries = 2;
/** The most pages of history read over HTTP after one subscribe (an ack carries up to 2000 events). */
const maxEventPages = 50;
/** The most ids one inbox ack may carry. */
const maxAckIds = 100;

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
  /** Tasks whose resuming subscribe is pending, and what arrived for them meanwhile. */
  private readonly resuming = new Map<string, Kept>();
  /** The number of the latest subscribe per task: answers to older ones are ignored. */
  private readonly subscribeGen = new Map<string, number>();
  /** Tasks whose since the server refused: the next subscribe goes without, and its record is authoritative. */
  private readonly sinceRefused = new Set<string>();
  private receiptsOn: boolean;
  /** Receipts sent (or being sent), by task. */
  private readonly receipts = new Map<string, "sending" | "sent">();
  /** Tasks whose receipt waits for a connection. */
  private readonly owed = new Set<string>();
  private inboxOn: boolean;
  /** The kinds as last listed. */
  kinds: KindEntry[] = [];
  /** The unseen finished tasks (once the inbox is listed: refreshInbox). */
  readonly inbox = new InboxList();

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
    this.receiptsOn = options.receipts ?? true;
    this.inboxOn = options.inbox ?? this.list;
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
      this.sendReceipts();
      void this.resync();
      if (this.inboxOn) void this.refreshInbox();
    });
    // The token of this socket expired: send a fresh one within the server's grace period.
    (s as unknown as Socket).on(AuthEvents.TokenExpired, () => void this.refreshToken());
    s.on("disconnect", (reason) => {
      // "io server disconnect" and "io client disconnect" end the client's own
      // retries; the server kind is retried here.
      const willRetry = s.active || reason === "io server disconnect";
      // The answers of this connection will not come: the next one subscribes again
      // (resuming tasks keep what they kept; their since has not moved).
      this.inFlight.clear();
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

    for (const name of taskEvents) (s as unknown as Socket).on(name, (p: unknown) => this.event(name, p));
    s.on(Events.TaskState, (r) => {
      if (!isRecord(r)) return;
      this.snapshot(r);
      this.noteFinal(r.taskId);
    });
    s.on(Events.InboxItem, (e) => {
      if (this.inbox.add(e)) this.hooks.inbox?.(this.inbox.items());
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

  /** event takes a live task event: kept while the task resumes, applied otherwise. */
  private event(name: string, p: unknown): void {
    if (!isPayload(p)) {
      console.warn("taskwire: ignored an event without taskId/seq", p);
      return;
    }
    const kept = this.resuming.get(p.taskId);
    if (kept) {
      if (kept.keep(name, p)) return;
      // Far more than a subscribe's answer can take: stop waiting for it.
      this.flushKept(p.taskId);
    }
    if (this.applyEvent(name, p, Date.now())) this.hooks.tasks(p.taskId);
    this.afterEvents(p.taskId, [name]);
  }

  /** applyEvent applies one task event to the store; it returns whether anything changed. */
  private applyEvent(name: string, p: { taskId: string; seq: number }, now: number): boolean {
    // The payloads are the contract's: the store checks what it relies on.
    const q = p as never;
    switch (name) {
      case Events.TaskProgress:
        return this.store.applyProgress(q, now);
      case Events.TaskStage:
        return this.store.applyStage(q, now);
      case Events.TaskMetadata:
        return this.store.applyMetadata(q, now);
      case Events.TaskStream:
        return this.store.applyStream(q, now);
      case Events.TaskCompleted:
        return this.store.applyCompleted(q, now);
      case Events.TaskFailed:
        return this.store.applyFailed(q, now);
      case Events.TaskCancelled:
        return this.store.applyCancelled(q, now);
      default:
        return false;
    }
  }

  /** afterEvents does what applied events call for: fetch stream gaps, details, a receipt. */
  private afterEvents(id: string, names: Iterable<string>): void {
    const set = new Set(names);
    if (set.has(Events.TaskStream)) this.fillGaps(id);
    if (set.has(Events.TaskCompleted)) {
      // An event without the result's details (a worker of the previous release):
      // the record has its file name and type.
      const r = this.store.get(id)?.result;
      if (r && (r.filename === undefined || r.contentType === undefined)) {
        this.api.getTask(id).then((rec) => this.snapshot(rec), () => undefined);
      }
    }
    this.noteFinal(id);
  }

  private snapshot(r: TaskRecord): void {
    const kept = this.resuming.get(r.taskId);
    if (kept) {
      // Applied after the resume's events, or it would hide them.
      kept.keepSnapshot(r);
      return;
    }
    if (this.store.applySnapshot(r, Date.now())) this.hooks.tasks(r.taskId);
    this.fillGaps(r.taskId);
  }

  /**
   * complete reads over HTTP the events an ack could not carry (it holds at most
   * so many): those between its last event and its record. It returns the ack with
   * them, or recovered false when they are no longer kept or cannot be read.
   */
  private async complete(id: string, ack: SubscribeAck, since: number): Promise<SubscribeAck> {
    const events = Array.isArray(ack.events) ? ack.events.slice() : [];
    let last = events.at(-1)?.seq ?? since;
    if (ack.recovered !== true || last >= ack.seq) return ack;
    const get = this.api.getEvents;
    if (!get) return { ...ack, recovered: false };
    try {
      for (let page = 0; last < ack.seq && page < maxEventPages; page++) {
        const p = await get.call(this.api, id, last);
        if (!p.recovered) return { ...ack, recovered: false };
        const next = p.events.filter((e) => e.seq > last);
        if (next.length === 0) break;
        events.push(...next);
        last = next[next.length - 1]!.seq;
      }
    } catch (err) {
      console.warn("taskwire: could not read the events of", id, err);
      return { ...ack, recovered: false };
    }
    return last >= ack.seq ? { ...ack, events } : { ...ack, recovered: false };
  }

  /**
   * resume applies the answer of a subscribe: the record, the events missed since
   * the seq held, and those kept meanwhile, each once, in seq order (planResume).
   */
  private async resume(id: string, reply: SubscribeAck, since: number | undefined, gen: number): Promise<void> {
    let ack: SubscribeAck = this.sinceRefused.delete(id) ? { ...reply, recovered: false } : reply;
    if (since !== undefined) {
      ack = await this.complete(id, ack, since);
      // A newer subscribe (a new connection) took over: its answer applies instead.
      if (this.subscribeGen.get(id) !== gen) return;
    }
    const kept = this.resuming.get(id);
    this.resuming.delete(id);
    const now = Date.now();
    let changed = false;
    const names: string[] = [];
    for (const step of planResume(ack, kept, this.store.get(id)?.seq ?? -1)) {
      if (step.kind === "record") {
        if (step.record.taskId !== id) continue;
        changed = (step.replace ? this.store.replaceSnapshot(step.record, now) : this.store.applySnapshot(step.record, now)) || changed;
        continue;
      }
      const data = { ...(step.event.data as Record<string, unknown>) };
      data["taskId"] ??= id;
      data["seq"] ??= step.event.seq;
      if (!isPayload(data) || data.taskId !== id) continue;
      changed = this.applyEvent(step.event.event, data, now) || changed;
      names.push(step.event.event);
    }
    if (changed) this.hooks.tasks(id);
    this.fillGaps(id);
    this.afterEvents(id, names);
  }

  /** flushKept stops resuming a task: what was kept is applied as it is. */
  private flushKept(id: string): void {
    const kept = this.resuming.get(id);
    if (!kept) return;
    this.resuming.delete(id);
    const now = Date.now();
    let changed = false;
    const names: string[] = [];
    for (const e of [...kept.events].sort((a, b) => a.seq - b.seq)) {
      if (!isPayload(e.data)) continue;
      changed = this.applyEvent(e.event, e.data, now) || changed;
      names.push(e.event);
    }
    if (kept.snapshot) changed = this.store.applySnapshot(kept.snapshot, now) || changed;
    if (changed) this.hooks.tasks(id);
    this.fillGaps(id);
    this.afterEvents(id, names);
  }

  /** noteFinal owes the server a receipt for a task whose final state came over the socket. */
  private noteFinal(id: string): void {
    const t = this.store.get(id);
    if (!t || !isFinal(t.state) || this.resuming.has(id) || this.receipts.has(id) || !this.receiptsOn) return;
    // A viewer's identity owns no task: the server refuses its receipts.
    if (this.tokens?.viewer) return;
    this.owed.add(id);
    this.sendReceipts();
  }

  /** sendReceipts sends the receipts owed (task:received), once per task. */
  private sendReceipts(): void {
    if (!this.socket.connected || !this.receiptsOn) return;
    for (const id of [...this.owed]) {
      this.owed.delete(id);
      const t = this.store.get(id);
      if (!t || this.receipts.has(id)) continue;
      this.receipts.set(id, "sending");
      this.socket.timeout(ackTimeoutMs).emit(Events.TaskReceived, { taskId: id, seq: t.seq }, (err, reply) => {
        if (err) {
          // No answer: the next connection sends it again.
          this.receipts.delete(id);
          this.owed.add(id);
          return;
        }
        this.receipts.set(id, "sent");
        if (reply && "error" in reply) {
          const code = reply.error?.code ?? "";
          // An identity that owns no task (a viewer, an API key): stop confirming.
          if (receiptRefusals.has(code)) this.receiptsOn = false;
          else console.warn("taskwire: receipt of", id, "refused:", code);
          return;
        }
        if (reply && typeof reply.deliveredAt === "string") this.hooks.received?.(id, reply.deliveredAt);
      });
    }
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
    this.resuming.delete(id);
    this.owed.delete(id);
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
      const kept = this.resuming.get(r.taskId);
      if (kept) kept.keepSnapshot(r);
      else changed = this.store.applySnapshot(r, now) || changed;
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

  /**
   * resync follows every unfinished task (resuming each from the seq held), lists
   * the tasks, and follows the unfinished ones the list brought.
   */
  async resync(): Promise<void> {
    // Subscribe before listing: a list applied first would move the seq held past
    // the events the resume is to bring.
    const done = new Set<string>();
    const followAll = () => {
      if (!this.socket.connected) return;
      const ids = new Set(this.store.unfinished());
      for (const id of this.followed) if (!this.store.get(id)) ids.add(id);
      for (const id of ids) {
        if (done.has(id)) continue;
        done.add(id);
        this.subscribe(id, true);
      }
    };
    followAll();
    if (this.list) {
      void this.refreshKinds();
      await this.refreshList();
    }
    followAll();
  }

  /**
   * subscribe follows a task: task:subscribe with since, the seq held (when any),
   * and applies the answer (resume).
   */
  subscribe(id: string, force = false): void {
    if (!this.socket.connected || this.inFlight.has(id)) return;
    if (!force && Date.now() - (this.lastSubscribe.get(id) ?? 0) < quietMs) return;
    this.inFlight.add(id);
    this.lastSubscribe.set(id, Date.now());
    this.sendSubscribe(id, 0);
  }

  private sendSubscribe(id: string, tries: number): void {
    const held = this.store.get(id)?.seq ?? -1;
    const since = held >= 0 && !this.sinceRefused.has(id) ? held : undefined;
    // From now on the task's live events wait for the answer.
    if (since !== undefined && !this.resuming.has(id)) this.resuming.set(id, new Kept());
    const gen = (this.subscribeGen.get(id) ?? 0) + 1;
    this.subscribeGen.set(id, gen);
    const req: SubscribeRequest = since !== undefined ? { taskId: id, since } : { taskId: id };
    this.socket.timeout(ackTimeoutMs).emit(Events.TaskSubscribe, req, (err, reply) => {
      if (this.subscribeGen.get(id) !== gen) return; // a later subscribe answers instead
      if (err) {
        if (this.socket.connected && tries < subscribeRetries) {
          this.sendSubscribe(id, tries + 1);
          return;
        }
        this.inFlight.delete(id);
        // Connected but unanswered: show what arrived (the watchdog asks again).
        // Disconnected: keep it; the next connection resumes from the same seq.
        if (this.socket.connected) this.flushKept(id);
        return;
      }
      if (isRecord(reply)) {
        void this.resume(id, reply as SubscribeAck, since, gen).finally(() => {
          if (this.subscribeGen.get(id) === gen) this.inFlight.delete(id);
        });
        return;
      }
      this.inFlight.delete(id);
      const code = reply?.error?.code;
      if (code === "not_found") {
        // Expired, or not ours: nothing true can be shown about it.
        this.gone(id);
        return;
      }
      if (since !== undefined && this.socket.connected) {
        // The seq held is more than the server has (it lost events it had sent):
        // ask for the record alone, which then replaces the view.
        console.warn("taskwire: resume of", id, "from", since, "refused:", code);
        this.sinceRefused.add(id);
        this.inFlight.add(id);
        this.sendSubscribe(id, tries);
        return;
      }
      this.flushKept(id);
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

  /**
   * refreshInbox lists the inbox (GET /api/v1/inbox) and, from then on, again on
   * every (re)connect: an item pushed while disconnected is not pushed again. A
   * failure is logged, or thrown with rethrow.
   */
  async refreshInbox(rethrow = false): Promise<InboxEntry[]> {
    this.inboxOn = true;
    if (!this.api.listInbox) return this.inbox.items();
    try {
      const list = await this.api.listInbox();
      if (this.inbox.set(list)) this.hooks.inbox?.(this.inbox.items());
    } catch (err) {
      if (rethrow) throw err;
      console.warn("taskwire: could not list the inbox", err);
    }
    return this.inbox.items();
  }

  /**
   * ackInbox marks the inbox items of ids seen: inbox:ack on the socket, or POST
   * /api/v1/inbox/ack without one. It resolves with the ids the server marked.
   */
  async ackInbox(ids: string[]): Promise<string[]> {
    if (ids.length > maxAckIds) {
      const out: string[] = [];
      for (let i = 0; i < ids.length; i += maxAckIds) out.push(...(await this.ackInbox(ids.slice(i, i + maxAckIds))));
      return out;
    }
    if (ids.length === 0) return [];
    let marked: string[] | undefined;
    if (this.socket.connected) {
      let reply: unknown;
      try {
        reply = await this.socket.timeout(ackTimeoutMs).emitWithAck(Events.InboxAck, { taskIds: ids });
      } catch {
        reply = undefined; // no answer: try HTTP
      }
      const e = (reply as { error?: { code?: string; message?: string } } | undefined)?.error;
      if (e) throw new ApiError(400, e.code ?? "bad_request", e.message ?? "the server refused the inbox ack");
      const got = (reply as { taskIds?: unknown } | undefined)?.taskIds;
      if (Array.isArray(got)) marked = got.filter((x): x is string => typeof x === "string");
    }
    if (marked === undefined) {
      if (!this.api.ackInbox) throw new Error("taskwire: no way to mark inbox items seen while disconnected");
      marked = await this.api.ackInbox(ids);
    }
    if (this.inbox.markSeen(marked)) this.hooks.inbox?.(this.inbox.items());
    return marked;
  }

  /** status is the connection indicator's value. */
  get status() {
    return connStatus(this.conn);
  }
}
