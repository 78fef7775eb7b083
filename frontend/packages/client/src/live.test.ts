// Live against a real Socket.IO server (Node's, standing in for taskwire's): the
// subscribe-on-connect rule, reconnects, the server's disconnect, events that beat
// the POST's answer, tasks the server no longer knows; the resume from the seq
// held (with the race of live events and the ack's history), delivery receipts
// and the inbox.

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Server, type Socket as ServerSocket } from "socket.io";
import type { CreatedTask } from "./api.js";
import { connStatus, type ConnStatus } from "./connection.js";
import type { HistoryEvent, InboxEntry, SubscribeRequest, TaskRecord } from "./generated/contract.js";
import { Live, type LiveOptions, type TaskApi } from "./live.js";
import { TaskStore } from "./state.js";

function rec(id: string, over: Partial<TaskRecord> = {}): TaskRecord {
  return {
    taskId: id,
    kind: "export",
    state: "running",
    seq: 3,
    percent: 30,
    done: 300,
    total: 1000,
    stage: "generating",
    attempts: 1,
    maxAttempts: 3,
    params: { rows: 1000 },
    createdAt: "2026-01-02T10:00:00Z",
    ...over,
  };
}

/** Backend is a Socket.IO server that answers task:subscribe from a table of records. */
class Backend {
  readonly io = new Server({ path: "/socket.io/" });
  readonly records = new Map<string, TaskRecord>();
  readonly subscribed: string[] = [];
  created = 0;
  sessions = 0;
  /** Items of each stream, by "taskId/stream". */
  readonly streams = new Map<string, unknown[]>();
  readonly streamFetches: string[] = [];
  /** refuse makes the connection middleware refuse this many handshakes. */
  refuse = 0;
  /** Every task:subscribe request, in order. */
  readonly requests: SubscribeRequest[] = [];
  /** The history of every task: each event emitted, in order. */
  readonly history = new Map<string, HistoryEvent[]>();
  /** The history keeps no event at or below this seq (recovered false below it). */
  trimmedTo = 0;
  /** The most events one ack carries (the rest: GET .../events), and the reads of those. */
  ackLimit = Infinity;
  readonly eventReads: number[] = [];
  /** beforeAck runs after the socket joined the task's room and before the ack (the race). */
  beforeAck: ((req: SubscribeRequest) => void) | undefined;
  /** Every task:received, in order; receiptError refuses them with that code. */
  readonly receipts: Array<{ taskId: string; seq: number }> = [];
  receiptError: string | undefined;
  /** The inbox of the identity, and the ids acked over the socket and over HTTP. */
  inbox: InboxEntry[] = [];
  readonly socketAcks: string[][] = [];
  readonly httpAcks: string[][] = [];

  async listen(): Promise<string> {
    this.io.listen(0);
    const srv = this.io.httpServer;
    if (!srv.listening) await new Promise((r) => srv.once("listening", r));
    const addr = srv.address();
    if (!addr || typeof addr === "string") throw new Error("no port");
    this.io.use((_s, next) => {
      if (this.refuse > 0) {
        this.refuse--;
        return next(new Error("unauthorized"));
      }
      next();
    });
    this.io.on("connection", (s: ServerSocket) => {
      s.on("task:subscribe", (req: SubscribeRequest, ack: (r: unknown) => void) => {
        this.subscribed.push(req.taskId);
        this.requests.push(req);
        const r = this.records.get(req.taskId);
        if (!r) return ack({ error: { code: "not_found", message: "no such task" } });
        void s.join("task:" + req.taskId);
        if (req.since === undefined) return ack(r);
        if (req.since > r.seq) return ack({ error: { code: "invalid_since", message: "since is past the task's seq" } });
        this.beforeAck?.(req);
        // Read after the join, as the server does: what beforeAck emitted is here too.
        const rr = this.records.get(req.taskId)!;
        if (req.since < this.trimmedTo) return ack({ ...rr, recovered: false, reason: "trimmed" });
        const events = (this.history.get(req.taskId) ?? []).filter((e) => e.seq > req.since! && e.seq <= rr.seq);
        ack({ ...rr, events: events.slice(0, this.ackLimit), recovered: true });
      });
      s.on("task:received", (req: { taskId: string; seq: number }, ack: (r: unknown) => void) => {
        this.receipts.push(req);
        if (this.receiptError) return ack({ error: { code: this.receiptError, message: "refused" } });
        ack({ taskId: req.taskId, deliveredAt: "2026-01-02T10:05:00Z" });
      });
      s.on("inbox:ack", (req: { taskIds: string[] }, ack: (r: unknown) => void) => {
        this.socketAcks.push(req.taskIds);
        this.inbox = this.inbox.filter((e) => !req.taskIds.includes(e.taskId));
        ack({ taskIds: req.taskIds });
      });
    });
    return `http://127.0.0.1:${addr.port}`;
  }

  /** emit publishes an event to the task's room and advances the record. */
  emit(event: string, payload: { taskId: string; seq: number } & Record<string, unknown>, update: Partial<TaskRecord>): void {
    const r = this.records.get(payload.taskId);
    if (r) this.records.set(payload.taskId, { ...r, ...update, seq: payload.seq });
    const h = this.history.get(payload.taskId) ?? [];
    h.push({ seq: payload.seq, event, data: payload });
    this.history.set(payload.taskId, h);
    this.io.to("task:" + payload.taskId).emit(event, payload);
  }

  /** pushInbox stores an inbox entry and pushes it to every socket. */
  pushInbox(e: InboxEntry): void {
    this.inbox.push(e);
    this.io.emit("inbox:item", e);
  }

  /** dropConnections cuts every transport, as a crash or a network loss would. */
  dropConnections(): void {
    for (const s of this.io.sockets.sockets.values()) s.conn.close();
  }

  api(): TaskApi {
    return {
      session: async () => {
        this.sessions++;
      },
      listTasks: async () => [...this.records.values()],
      getTask: async (id) => {
        const r = this.records.get(id);
        if (!r) throw new Error("not found");
        return r;
      },
      cancelTask: async (id) => this.records.get(id)!,
      listInbox: async () => this.inbox.slice(),
      getEvents: async (id, since) => {
        this.eventReads.push(since);
        const r = this.records.get(id)!;
        const events = (this.history.get(id) ?? []).filter((e) => e.seq > since).slice(0, 7);
        return { taskId: id, seq: r.seq, events, recovered: since >= this.trimmedTo };
      },
      ackInbox: async (ids) => {
        this.httpAcks.push(ids);
        this.inbox = this.inbox.filter((e) => !ids.includes(e.taskId));
        return ids;
      },
      getStream: async (id, stream, from) => {
        this.streamFetches.push(`${id}/${stream}?from=${from}`);
        const items = this.streams.get(id + "/" + stream) ?? [];
        return { stream, from, count: items.length, items: items.slice(from) };
      },
      createTask: async (_kind, params, socketId): Promise<CreatedTask> => {
        const rows = Number(params["rows"]);
        const id = "new" + ++this.created;
        this.records.set(id, rec(id, { state: "queued", seq: 0, percent: 0, done: 0, total: rows, params: { rows } }));
        // Like the server: the socket joins the room before the task can emit, and
        // a fast worker's first event reaches it before this answer does.
        if (socketId) this.io.in(socketId).socketsJoin("task:" + id);
        this.emit("task:progress", { taskId: id, seq: 1, percent: 10, done: rows / 10, total: rows, stage: "generating" }, { state: "running", percent: 10 });
        await new Promise((r) => setTimeout(r, 50));
        return { id, state: "queued" };
      },
    };
  }
}

/** Harness runs a Live with hooks that wake waiters. */
class Harness {
  readonly statuses: ConnStatus[] = [];
  readonly live: Live;
  /** What the inbox hook said, in order. */
  readonly inboxes: string[][] = [];
  readonly received: string[] = [];
  private waiters: Array<() => void> = [];

  constructor(backend: Backend, url: string, options: LiveOptions = {}, readonly store: TaskStore = new TaskStore()) {
    this.live = new Live(this.store, backend.api(), {
      tasks: () => this.wake(),
      conn: (s) => {
        const st = connStatus(s);
        if (this.statuses.at(-1) !== st) this.statuses.push(st);
        this.wake();
      },
      inbox: (items) => {
        this.inboxes.push(items.map((e) => e.taskId));
        this.wake();
      },
      received: (id) => {
        this.received.push(id);
        this.wake();
      },
    }, url, options);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    w.forEach((f) => f());
  }

  /** until resolves when cond holds, re-checking on every hook call; it fails after 5 s. */
  async until(cond: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 5000;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("timed out waiting for " + what);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 100));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}

let backend: Backend;
let url: string;
let h: Harness | undefined;

beforeEach(async () => {
  backend = new Backend();
  url = await backend.listen();
});

afterEach(async () => {
  h?.live.stop();
  h = undefined;
  await backend.io.close();
});

describe("Live", () => {
  it("shows listed tasks and follows the unfinished ones once connected", async () => {
    backend.records.set("a", rec("a"));
    backend.records.set("done", rec("done", { state: "completed", seq: 9, percent: 100 }));
    h = new Harness(backend, url);
    await h.live.start();
    await h.until(() => backend.subscribed.includes("a"), "subscribe of the running task");
    expect(backend.subscribed).not.toContain("done");
    expect(h.statuses).toEqual(["connected"]);

    backend.emit("task:progress", { taskId: "a", seq: 4, percent: 40, done: 400, total: 1000, stage: "writing" }, { percent: 40 });
    await h.until(() => h!.store.get("a")?.percent === 40, "progress 40%");
    expect(h.store.get("a")?.stage).toBe("writing");
  });

  it("after a dropped connection: says reconnecting, subscribes again and shows what it missed", async () => {
    backend.records.set("a", rec("a"));
    h = new Harness(backend, url);
    await h.live.start();
    await h.until(() => backend.subscribed.length === 1, "first subscribe");

    backend.dropConnections();
    await h.until(() => h!.live.status === "reconnecting", "the reconnecting state");
    // While the client is away the task moves on; the event reaches nobody.
    backend.emit("task:progress", { taskId: "a", seq: 6, percent: 60, done: 600, total: 1000, stage: "writing" }, { percent: 60, done: 600 });

    await h.until(() => backend.subscribed.length === 2, "a subscribe on the new connection");
    await h.until(() => h!.store.get("a")?.percent === 60, "the missed progress, from the snapshot");
    expect(h.statuses).toEqual(["connected", "reconnecting", "connected"]);

    // And the new connection is in the task's room again.
    backend.emit("task:completed", { taskId: "a", seq: 9, resultUrl: "/r", rows: 1000, bytes: 64_000 }, { state: "completed", percent: 100 });
    await h.until(() => h!.store.get("a")?.state === "completed", "the live completed event");
    expect(h.store.get("a")?.result).toMatchObject({ url: "/r", bytes: 64_000 });
  });

  it("after a reconnect, takes a final state from the task list without subscribing", async () => {
    backend.records.set("a", rec("a"));
    h = new Harness(backend, url);
    await h.live.start();
    await h.until(() => backend.subscribed.length === 1, "first subscribe");
    backend.dropConnections();
    await h.until(() => h!.live.status === "reconnecting", "the reconnecting state");
    backend.emit("task:completed", { taskId: "a", seq: 9, resultUrl: "/r", rows: 1000, bytes: 64_000 }, {
      state: "completed",
      percent: 100,
      result: { url: "/r", rows: 1000, bytes: 64_000, contentType: "text/csv", filename: "a.csv" },
    });
    await h.until(() => h!.store.get("a")?.state === "completed", "the completed record after reconnect");
    expect(h.store.get("a")?.result).toMatchObject({ bytes: 64_000, filename: "a.csv" });
  });

  it("reconnects after the server disconnects it (which socket.io-client does not retry itself)", async () => {
    backend.records.set("a", rec("a"));
    h = new Harness(backend, url);
    await h.live.start();
    await h.until(() => backend.subscribed.length === 1, "first subscribe");
    backend.io.disconnectSockets();
    await h.until(() => backend.subscribed.length === 2, "a second subscribe after the server's disconnect");
    expect(h.live.status).toBe("connected");
    expect(h.statuses).toEqual(["connected", "reconnecting", "connected"]);
  });

  it("renews the session and connects again when the server refuses the handshake", async () => {
    backend.records.set("a", rec("a"));
    backend.refuse = 1; // say, the server restarted with another secret
    h = new Harness(backend, url);
    await h.live.start();
    await h.until(() => backend.subscribed.includes("a"), "a subscribe once the handshake is accepted");
    expect(backend.sessions).toBe(2);
    // Never "offline" or "reconnecting": it had not connected yet, and kept trying.
    expect(h.statuses).toEqual(["connecting", "connected"]);
  });

  it("keeps events that arrive before the POST's answer, then fills the task in", async () => {
    h = new Harness(backend, url);
    await h.live.start();
    await h.until(() => h!.live.socket.connected, "connected");
    const id = await h.live.startExport(5000);
    await h.until(() => backend.subscribed.includes(id) && h!.store.get(id)?.kind === "export", "subscribe after create");
    expect(h.store.get(id)).toMatchObject({ seq: 1, percent: 10, state: "running", rows: 5000, createdAt: "2026-01-02T10:00:00Z" });
  });

  it("forgets a task the server says does not exist", async () => {
    backend.records.set("gone", rec("gone"));
    h = new Harness(backend, url);
    await h.live.start();
    expect(h.store.get("gone")).toBeDefined();
    backend.dropConnections();
    backend.records.delete("gone"); // expired while we were away
    await h.until(() => h!.store.get("gone") === undefined, "the task to be forgotten");
  });

  it("on load, fetches the streams the record counts; a chunk past the end fetches the gap", async () => {
    const items = Array.from({ length: 30 }, (_, i) => ({ epoch: i + 1, loss: 1 / (i + 1) }));
    backend.streams.set("a/metrics", items.slice(0, 20));
    backend.records.set("a", rec("a", { kind: "export", attempts: 1, streams: { metrics: 20 } }));
    h = new Harness(backend, url);
    await h.live.start();
    await h.until(() => h!.store.streamCount("a", "metrics") === 20, "the 20 items the record counts");
    expect(backend.streamFetches[0]).toBe("a/metrics?from=0");
    await h.until(() => backend.subscribed.includes("a"), "subscribe");

    // The next chunk arrives; then one is lost and the one after it leaves a gap.
    backend.streams.set("a/metrics", items.slice(0, 30));
    backend.emit("task:stream", { taskId: "a", seq: 10, attempt: 1, stream: "metrics", offset: 20, items: items.slice(20, 25) }, {});
    await h.until(() => h!.store.streamCount("a", "metrics") === 25, "the live chunk");
    backend.emit("task:stream", { taskId: "a", seq: 12, attempt: 1, stream: "metrics", offset: 28, items: items.slice(28, 30) }, {});
    await h.until(() => h!.store.streamCount("a", "metrics") === 30, "the gap fetched");
    expect(backend.streamFetches).toContain("a/metrics?from=25");
    expect(h.store.get("a")?.streams["metrics"]?.items).toEqual(items);
  });

  it("lists the kinds", async () => {
    h = new Harness(backend, url);
    const kinds = [{ name: "train", paramsSchema: {}, workers: 1 }];
    const api = backend.api();
    const seen: string[][] = [];
    const live = new Live(h.store, { ...api, listKinds: async () => kinds }, {
      tasks: () => undefined,
      conn: () => undefined,
      kinds: (k) => seen.push(k.map((x) => x.name)),
    }, url);
    try {
      await live.start();
      await h.until(() => seen.length > 0, "the kinds");
      expect(seen[0]).toEqual(["train"]);
      expect(live.kinds).toEqual(kinds);
    } finally {
      live.stop();
    }
  });
});

/** SpyStore records the seq of every event the store applied, in order. */
class SpyStore extends TaskStore {
  readonly applied: number[] = [];
  override applyStream(p: Parameters<TaskStore["applyStream"]>[0], now: number): boolean {
    const ok = super.applyStream(p, now);
    if (ok) this.applied.push(p.seq);
    return ok;
  }
  override applyProgress(p: Parameters<TaskStore["applyProgress"]>[0], now: number): boolean {
    const ok = super.applyProgress(p, now);
    if (ok) this.applied.push(p.seq);
    return ok;
  }
  override applyCompleted(p: Parameters<TaskStore["applyCompleted"]>[0], now: number): boolean {
    const ok = super.applyCompleted(p, now);
    if (ok) this.applied.push(p.seq);
    return ok;
  }
}

/** line emits chunk n (seq n, item n-1 of "log") of task a. */
function line(n: number): void {
  backend.emit("task:stream", { taskId: "a", seq: n, attempt: 1, stream: "log", offset: n - 1, items: [`line ${n}`] }, { streams: { log: n } });
}

const lines = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `line ${from + i}`);

/** following starts a Live that follows task a (a running task at seq 0) and has its first n chunks. */
async function following(n: number, store: TaskStore = new TaskStore()): Promise<Harness> {
  backend.records.set("a", rec("a", { seq: 0, streams: {} }));
  const hh = (h = new Harness(backend, url, {}, store));
  await hh.live.start();
  await hh.until(() => backend.subscribed.length === 1, "first subscribe");
  for (let i = 1; i <= n; i++) line(i);
  await hh.until(() => hh.store.streamCount("a", "log") === n, "the live chunks");
  return hh;
}

/** away cuts the connection and waits until the client knows. */
async function away(hh: Harness): Promise<void> {
  backend.dropConnections();
  await hh.until(() => hh.live.status === "reconnecting", "the reconnecting state");
}

describe("Live: resume from the seq held", () => {
  it("after a dropped connection, gets every missed event from the ack, once and in order, without HTTP", async () => {
    const store = new SpyStore();
    const h = await following(3, store);
    await away(h);
    for (let n = 4; n <= 200; n++) line(n); // nobody receives these
    await h.until(() => h!.store.streamCount("a", "log") === 200, "the missed chunks");
    expect(backend.requests.at(-1)).toEqual({ taskId: "a", since: 3 });
    expect(store.get("a")?.streams["log"]?.items).toEqual(lines(1, 200));
    expect(store.applied).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(backend.streamFetches).toEqual([]);

    // And it is in the room again.
    line(201);
    await h.until(() => h!.store.streamCount("a", "log") === 201, "the next live chunk");
  });

  it("the race: live events that beat the ack, and are in its history too, are applied once, in order", async () => {
    const store = new SpyStore();
    const h = await following(1, store);
    await away(h);
    for (let n = 2; n <= 50; n++) line(n);
    // On the new connection, between the join and the ack: 51..60 reach the
    // socket live before the ack, and its history has them too; 55 is sent twice.
    backend.beforeAck = () => {
      backend.beforeAck = undefined;
      for (let n = 51; n <= 60; n++) line(n);
      backend.io.to("task:a").emit("task:stream", { taskId: "a", seq: 55, attempt: 1, stream: "log", offset: 54, items: ["line 55"] });
    };
    await h.until(() => h!.store.streamCount("a", "log") === 60, "every chunk");
    line(61);
    await h.until(() => h!.store.streamCount("a", "log") === 61, "the next live chunk");
    expect(store.get("a")?.streams["log"]?.items).toEqual(lines(1, 61));
    expect(store.applied).toEqual(Array.from({ length: 61 }, (_, i) => i + 1));
    expect(backend.streamFetches).toEqual([]);
  });

  it("reads over HTTP the events an ack could not carry, page by page", async () => {
    const store = new SpyStore();
    const h = await following(2, store);
    await away(h);
    for (let n = 3; n <= 40; n++) line(n);
    backend.ackLimit = 10; // the ack brings 3..12, the rest is read 7 at a time
    await h.until(() => h.store.streamCount("a", "log") === 40, "every chunk");
    expect(backend.eventReads).toEqual([12, 19, 26, 33]);
    expect(store.applied).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(backend.streamFetches).toEqual([]);
  });

  it("recovered false: the record replaces the view and the streams are read again over HTTP", async () => {
    const h = await following(1);
    await away(h);
    for (let n = 2; n <= 30; n++) line(n);
    backend.trimmedTo = 20; // the history lost 1..19
    backend.streams.set("a/log", lines(1, 30));
    await h.until(() => h!.store.streamCount("a", "log") === 30, "the log read again");
    expect(h.store.get("a")?.seq).toBe(30);
    expect(backend.streamFetches).toContain("a/log?from=1");
    expect(h.store.get("a")?.streams["log"]?.items).toEqual(lines(1, 30));
  });

  it("a since the server refuses (it lost events it had sent): subscribes again without, and takes the record", async () => {
    backend.records.set("a", rec("a", { seq: 3 }));
    h = new Harness(backend, url);
    await h.live.start();
    await h.until(() => backend.subscribed.length === 1, "first subscribe");
    backend.emit("task:progress", { taskId: "a", seq: 9, percent: 90, done: 900, total: 1000, stage: "writing" }, {});
    await h.until(() => h!.store.get("a")?.seq === 9, "progress 9");
    backend.records.set("a", rec("a", { seq: 5, percent: 50 })); // a restored older copy
    backend.dropConnections();
    await h.until(() => h!.store.get("a")?.seq === 5, "the record replacing the view");
    expect(backend.requests.slice(-2)).toEqual([{ taskId: "a", since: 9 }, { taskId: "a" }]);
    expect(h.store.get("a")?.percent).toBe(50);
  });
});

describe("Live: delivery receipts", () => {
  it("confirms a final event once, with its seq", async () => {
    backend.records.set("a", rec("a"));
    h = new Harness(backend, url);
    await h.live.start();
    await h.until(() => backend.subscribed.length === 1, "first subscribe");
    backend.emit("task:completed", { taskId: "a", seq: 9, resultUrl: "/r", rows: 1000, bytes: 64_000 }, { state: "completed" });
    await h.until(() => h!.received.includes("a"), "the receipt's answer");
    expect(backend.receipts).toEqual([{ taskId: "a", seq: 9 }]);
    // The same final event again (another replica), a reconnect: no second receipt.
    backend.io.to("task:a").emit("task:completed", { taskId: "a", seq: 9, resultUrl: "/r", rows: 1000, bytes: 64_000 });
    backend.dropConnections();
    await h.until(() => h!.live.status === "reconnecting", "reconnecting");
    await h.until(() => h!.live.status === "connected", "connected again");
    await h.live.resync();
    expect(backend.receipts).toHaveLength(1);
  });

  it("confirms a task that finished while it was away, from the subscribe's answer", async () => {
    backend.records.set("a", rec("a"));
    h = new Harness(backend, url);
    await h.live.start();
    await h.until(() => backend.subscribed.length === 1, "first subscribe");
    backend.dropConnections();
    await h.until(() => h!.live.status === "reconnecting", "reconnecting");
    backend.emit("task:failed", { taskId: "a", seq: 7, error: { code: "boom", message: "boom" } }, { state: "failed" });
    await h.until(() => backend.receipts.length === 1, "a receipt");
    expect(backend.receipts).toEqual([{ taskId: "a", seq: 7 }]);
    expect(h.store.get("a")?.state).toBe("failed");
  });

  it("does not confirm tasks it only read over HTTP", async () => {
    backend.records.set("done", rec("done", { state: "completed", seq: 9 }));
    h = new Harness(backend, url);
    await h.live.start();
    await h.until(() => h!.live.socket.connected, "connected");
    await h.live.resync();
    expect(backend.receipts).toEqual([]);
  });

  it("sends none with a viewer token, nor after the server refused one", async () => {
    const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const { Tokens } = await import("./auth.js");
    const viewer = `${enc({ alg: "HS256", typ: "taskwire-viewer+jwt" })}.${enc({ jti: "v1" })}.sig`;
    backend.records.set("a", rec("a"));
    h = new Harness(backend, url, { tokens: new Tokens(viewer), list: false });
    h.live.follow("a");
    h.live.connect();
    await h.until(() => backend.subscribed.length === 1, "the subscribe");
    backend.emit("task:completed", { taskId: "a", seq: 9, resultUrl: "/r", rows: 1, bytes: 1 }, { state: "completed" });
    await h.until(() => h!.store.get("a")?.state === "completed", "completed");
    h.live.stop();

    // An identity the library cannot tell (an API key): the server's refusal stops it.
    backend.receiptError = "forbidden";
    backend.records.set("b", rec("b"));
    backend.records.set("c", rec("c"));
    h = new Harness(backend, url);
    await h.live.start();
    await h.until(() => backend.subscribed.includes("c"), "the subscribes");
    backend.emit("task:completed", { taskId: "b", seq: 9, resultUrl: "/r", rows: 1, bytes: 1 }, { state: "completed" });
    await h.until(() => backend.receipts.length === 1, "one refused receipt");
    await new Promise((r) => setTimeout(r, 50)); // the refusal's answer
    backend.emit("task:completed", { taskId: "c", seq: 9, resultUrl: "/r", rows: 1, bytes: 1 }, { state: "completed" });
    await h.until(() => h!.store.get("c")?.state === "completed", "c completed");
    expect(backend.receipts.map((r) => r.taskId)).toEqual(["b"]);
  });
});

describe("Live: inbox", () => {
  const entry = (id: string, finishedAt: string): InboxEntry => ({ taskId: id, kind: "export", state: "completed", seq: 9, finishedAt });

  it("lists the inbox on connect, adds pushed items, and marks them seen over the socket or HTTP", async () => {
    backend.inbox = [entry("old", "2026-01-02T09:00:00Z")];
    h = new Harness(backend, url);
    await h.live.start();
    await h.until(() => h!.inboxes.length > 0, "the inbox");
    expect(h.live.inbox.items().map((e) => e.taskId)).toEqual(["old"]);

    backend.pushInbox(entry("new", "2026-01-02T10:00:00Z"));
    await h.until(() => h!.live.inbox.size === 2, "the pushed item");
    expect(h.live.inbox.items().map((e) => e.taskId)).toEqual(["new", "old"]);

    expect(await h.live.ackInbox(["new"])).toEqual(["new"]);
    expect(backend.socketAcks).toEqual([["new"]]);
    expect(h.live.inbox.items().map((e) => e.taskId)).toEqual(["old"]);

    // Disconnected: over HTTP. And an item pushed while away is listed on reconnect.
    h.live.socket.disconnect();
    expect(await h.live.ackInbox(["old"])).toEqual(["old"]);
    expect(backend.httpAcks).toEqual([["old"]]);
    expect(h.live.inbox.size).toBe(0);
    backend.inbox.push(entry("away", "2026-01-02T11:00:00Z"));
    h.live.connect();
    await h.until(() => h!.live.inbox.has("away"), "the item of the time away");
  });
});
