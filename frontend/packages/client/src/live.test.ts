// Live against a real Socket.IO server (Node's, standing in for taskwire's): the
// subscribe-on-connect rule, reconnects, the server's disconnect, events that beat
// the POST's answer, and tasks the server no longer knows.

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Server, type Socket as ServerSocket } from "socket.io";
import type { CreatedTask } from "./api.js";
import { connStatus, type ConnStatus } from "./connection.js";
import type { TaskRecord } from "./generated/contract.js";
import { Live, type TaskApi } from "./live.js";
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
      s.on("task:subscribe", (req: { taskId: string }, ack: (r: unknown) => void) => {
        this.subscribed.push(req.taskId);
        const r = this.records.get(req.taskId);
        if (!r) return ack({ error: { code: "not_found", message: "no such task" } });
        void s.join("task:" + req.taskId);
        ack(r);
      });
    });
    return `http://127.0.0.1:${addr.port}`;
  }

  /** emit publishes an event to the task's room and advances the record. */
  emit(event: string, payload: { taskId: string; seq: number } & Record<string, unknown>, update: Partial<TaskRecord>): void {
    const r = this.records.get(payload.taskId);
    if (r) this.records.set(payload.taskId, { ...r, ...update, seq: payload.seq });
    this.io.to("task:" + payload.taskId).emit(event, payload);
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
  readonly store = new TaskStore();
  readonly statuses: ConnStatus[] = [];
  readonly live: Live;
  private waiters: Array<() => void> = [];

  constructor(backend: Backend, url: string) {
    this.live = new Live(this.store, backend.api(), {
      tasks: () => this.wake(),
      conn: (s) => {
        const st = connStatus(s);
        if (this.statuses.at(-1) !== st) this.statuses.push(st);
        this.wake();
      },
    }, url);
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
