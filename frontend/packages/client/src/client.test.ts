// createClient against FakeServer: what a subscriber sees (current state at once,
// changes in seq order, stale events dropped, streams reset on a new attempt,
// snapshots after a reconnect), results and downloads, the token contract (bearer
// and handshake, refresh before exp, task:token_expired, refused handshakes) and
// viewer tokens.

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ApiError } from "./api.js";
import { createClient, TaskError, type TaskHandle, type TaskwireClient } from "./client.js";
import type { TaskView } from "./state.js";
import { FakeServer, jwt, record, waitFor } from "./testing/fake.js";

let server: FakeServer;
const clients: TaskwireClient[] = [];

beforeEach(async () => {
  server = new FakeServer();
  await server.listen();
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await server.close();
});

function client(token: string | (() => Promise<string>)): TaskwireClient {
  const c = createClient({ url: server.url, token, transports: ["websocket"] });
  clients.push(c);
  return c;
}

/** until resolves with the first state of h that satisfies pred (bounded). */
function until(h: TaskHandle, pred: (t: TaskView) => boolean, what: string, timeoutMs = 5000): Promise<TaskView> {
  return new Promise((resolve, reject) => {
    let off: (() => void) | undefined;
    const timer = setTimeout(() => {
      off?.();
      reject(new Error(`timed out waiting for ${what}`));
    }, timeoutMs);
    off = h.subscribe((t) => {
      if (!pred(t)) return;
      clearTimeout(timer);
      queueMicrotask(() => off?.());
      resolve(t);
    });
  });
}

/** joined waits until the server has c's socket in the room of task id. */
async function joined(c: TaskwireClient, id: string): Promise<void> {
  await waitFor(() => c.live.socket.connected && server.subscribed.includes(id), `the subscribe of ${id}`);
}

describe("createClient", () => {
  it("delivers the current state at once, then changes in seq order, dropping stale events", async () => {
    server.tokens.set("tok", { sub: "u-1" });
    server.add(record("a", { state: "running", seq: 3, percent: 30, done: 30 }), "u-1");
    const c = client("tok");
    const h = c.task("a");
    const seen: TaskView[] = [];
    const off = h.subscribe((t) => seen.push(t));
    await joined(c, "a");
    await waitFor(() => seen.length > 0, "the snapshot");
    expect(seen[0]!.seq).toBe(3);
    expect(seen[0]!.percent).toBe(30);

    // A second subscriber gets the state at once, synchronously.
    const now: TaskView[] = [];
    const off2 = h.subscribe((t) => now.push(t));
    expect(now.map((t) => t.seq)).toEqual([3]);
    off2();

    server.emit("task:progress", { taskId: "a", seq: 5, percent: 50, done: 50, total: 100, stage: "rows" }, { percent: 50 });
    server.emit("task:progress", { taskId: "a", seq: 4, percent: 40, done: 40, total: 100, stage: "rows" });
    server.emit("task:progress", { taskId: "a", seq: 6, percent: 60, done: 60, total: 100, stage: "rows" }, { percent: 60 });
    await waitFor(() => seen.at(-1)!.seq === 6, "seq 6");
    const seqs = seen.map((t) => t.seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(seqs).not.toContain(4);
    // Listeners get copies: an old state is not changed by later events.
    expect(seen[0]!.percent).toBe(30);
    off();
  });

  it("starts the streams over when a new attempt begins", async () => {
    server.tokens.set("tok", { sub: "u-1" });
    server.add(record("a", { state: "running", seq: 1, attempts: 1 }), "u-1");
    const c = client("tok");
    const h = c.task("a");
    await until(h, (t) => t.seq === 1, "the snapshot");
    await joined(c, "a");
    server.emit("task:stream", { taskId: "a", seq: 2, attempt: 1, stream: "log", offset: 0, items: ["one", "two"] });
    await until(h, (t) => (t.streams["log"]?.items.length ?? 0) === 2, "two items");
    server.emit("task:progress", { taskId: "a", seq: 3, attempt: 2, percent: 0, done: 0, total: 100, stage: "rows" });
    const t = await until(h, (t) => t.seq === 3, "the second attempt");
    expect(t.attempt).toBe(2);
    expect(t.streams["log"]).toBeUndefined();
  });

  it("takes the snapshot again after a reconnect, with what it missed", async () => {
    server.tokens.set("tok", { sub: "u-1" });
    server.add(record("a", { state: "running", seq: 1 }), "u-1");
    const c = client("tok");
    const h = c.task("a");
    await until(h, (t) => t.seq === 1, "the snapshot");
    await joined(c, "a");
    const before = server.subscribed.length;
    server.dropConnections();
    // Said while the client was away: only the snapshot brings it.
    server.records.set("a", record("a", { state: "completed", seq: 9, percent: 100, done: 100, result: { url: "/api/v1/tasks/a/result", rows: 1, bytes: 6, filename: "a.csv", contentType: "text/csv" } }));
    const t = await until(h, (t) => t.state === "completed", "the final state");
    expect(t.seq).toBe(9);
    expect(server.subscribed.length).toBeGreaterThan(before);
  });

  it("starts a task, resolves its result and downloads it with the token", async () => {
    server.tokens.set("tok", { sub: "u-1" });
    const c = client("tok");
    const h = await c.start("export", { rows: 1 });
    expect(h.id).toBe("t1");
    const result = h.result({ timeoutMs: 5000 });
    await waitFor(() => server.subscribed.includes("t1"), "the subscribe");
    server.emit("task:progress", { taskId: "t1", seq: 1, percent: 50, done: 1, total: 2, stage: "rows" });
    server.emit("task:completed", { taskId: "t1", seq: 2, resultUrl: "/api/v1/tasks/t1/result", rows: 1, bytes: 6, result: { url: "/api/v1/tasks/t1/result", rows: 1, bytes: 6, filename: "t1.csv", contentType: "text/csv" } });
    const r = await result;
    expect(r.filename).toBe("t1.csv");
    const res = await r.download();
    expect(await res.text()).toBe("id\n1\n");
    expect(server.bearers.every((b) => b === "Bearer tok")).toBe(true);
    expect(server.handshakes).toContain("tok");
  });

  it("rejects result() with a TaskError when the task fails", async () => {
    server.tokens.set("tok", { sub: "u-1" });
    server.add(record("a", { state: "failed", seq: 4, error: { code: "boom", message: "it broke" } }), "u-1");
    const err = await client("tok").task("a").result({ timeoutMs: 5000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskError);
    expect((err as TaskError).code).toBe("boom");
  });

  it("tells a subscriber when the task is not this identity's", async () => {
    server.tokens.set("tok", { sub: "u-1" });
    server.add(record("other"), "u-2");
    const err = await new Promise<Error>((resolve) => client("tok").task("other").subscribe(() => undefined, resolve));
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe("not_found");
  });

  it("lists the identity's tasks", async () => {
    server.tokens.set("tok", { sub: "u-1" });
    server.add(record("a"), "u-1");
    server.add(record("b"), "u-2");
    const list = await client("tok").tasks();
    expect(list.map((t) => t.id)).toEqual(["a"]);
    await expect(client("nobody").tasks()).rejects.toMatchObject({ code: "unauthorized" });
  });
});

describe("tokens", () => {
  it("refreshes a JWT before its exp and sends it with auth:refresh", async () => {
    const exp = Math.floor(Date.now() / 1000) + 31; // due for refresh within about a second
    const first = jwt("u-1", exp, "1");
    const second = jwt("u-1", exp + 3600, "2");
    server.tokens.set(first, { sub: "u-1" });
    server.tokens.set(second, { sub: "u-1" });
    const issued = [first, second];
    let calls = 0;
    const c = client(async () => issued[Math.min(calls++, issued.length - 1)]!);
    server.add(record("a"), "u-1");
    await until(c.task("a"), (t) => t.seq === 0, "the snapshot");
    expect(server.handshakes).toEqual([first]);
    await waitFor(() => server.refreshed.length > 0, "auth:refresh", 8000);
    expect(server.refreshed[0]).toBe(second);
  });

  it("answers task:token_expired with a fresh token", async () => {
    let n = 0;
    const c = client(async () => {
      const t = "tok" + ++n;
      server.tokens.set(t, { sub: "u-1" });
      return t;
    });
    server.add(record("a"), "u-1");
    await until(c.task("a"), () => true, "the snapshot");
    server.expire();
    await waitFor(() => server.refreshed.length > 0, "auth:refresh");
    expect(server.refreshed[0]).toBe("tok2");
  });

  it("asks for a new token when the handshake is refused", async () => {
    let n = 0;
    const c = client(async () => {
      const t = "tok" + ++n;
      // The first token is already expired: not known to the server.
      if (n > 1) server.tokens.set(t, { sub: "u-1" });
      return t;
    });
    const offered: string[] = [];
    const off = c.onConnection((s) => offered.push(s.lastError ?? (s.socketConnected ? "connected" : "")));
    server.add(record("a"), "u-1");
    // HTTP: a 401 fetches the token again once.
    await until(c.task("a"), () => true, "the snapshot", 8000);
    await waitFor(() => c.live.socket.connected, "the connection", 8000);
    expect(server.handshakes[0]).toBe("tok1");
    expect(server.handshakes.at(-1)).not.toBe("tok1");
    off();
  });
});

describe("viewer tokens", () => {
  it("tells a subscriber when its fixed token is refused (an expired viewer link)", async () => {
    server.add(record("a"), "u-1");
    const err = await new Promise<Error>((resolve) => client("expired-viewer-token").task("a").subscribe(() => undefined, resolve));
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe("unauthorized");
  });

  it("follows one task read-only with a token the owner created", async () => {
    server.tokens.set("owner", { sub: "u-1" });
    server.add(record("a", { state: "running", seq: 2, percent: 20 }), "u-1");
    server.add(record("b"), "u-1");
    const owner = client("owner");
    const vt = await owner.task("a").viewer({ ttlSeconds: 600 });
    expect(vt.taskId).toBe("a");
    expect(server.bearers.at(-1)).toBe("Bearer owner");

    const viewer = client(vt.token);
    const h = viewer.task("a");
    await until(h, (t) => t.seq === 2, "the viewer's snapshot");
    await waitFor(() => viewer.live.socket.connected && server.subscribed.filter((id) => id === "a").length >= 1, "the viewer's subscribe");
    server.emit("task:progress", { taskId: "a", seq: 3, percent: 70, done: 70, total: 100, stage: "rows" }, { percent: 70 });
    expect((await until(h, (t) => t.seq === 3, "the viewer's event")).percent).toBe(70);
    const err = await h.cancel().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe("forbidden");
    const other = await new Promise<Error>((resolve) => viewer.task("b").subscribe(() => undefined, resolve));
    expect((other as ApiError).code).toBe("not_found");
  });

  it("confirms a task's final event once; a viewer confirms nothing", async () => {
    server.tokens.set("owner", { sub: "u-1" });
    server.add(record("a", { state: "running", seq: 2 }), "u-1");
    const owner = client("owner");
    const vt = await owner.task("a").viewer();
    const viewer = client(vt.token);
    for (const c of [owner, viewer]) {
      await until(c.task("a"), (t) => t.seq === 2, "the snapshot");
      await waitFor(() => c.live.socket.connected, "connected");
    }
    await waitFor(() => server.subscribed.filter((id) => id === "a").length >= 2, "both subscribes");
    const done = { taskId: "a", seq: 3, resultUrl: "/r", rows: 1, bytes: 1 };
    server.emit("task:completed", done, { state: "completed" });
    await until(owner.task("a"), (t) => t.state === "completed", "completed (owner)");
    await until(viewer.task("a"), (t) => t.state === "completed", "completed (viewer)");
    await waitFor(() => server.receipts.length === 1, "the owner's receipt");
    server.emit("task:completed", done); // again: a duplicate
    await owner.task("a").result({ timeoutMs: 2000 });
    expect(server.receipts).toEqual([{ taskId: "a", seq: 3, sub: "u-1" }]);
  });

  it("inbox: lists the unseen tasks, adds pushed ones, and marks them seen", async () => {
    server.tokens.set("tok", { sub: "u-1" });
    server.inboxes.set("u-1", [{ taskId: "old", kind: "export", state: "failed", seq: 4, finishedAt: "2026-01-02T09:00:00Z", error: { code: "x", message: "x" } }]);
    const c = client("tok");
    const seen: string[][] = [];
    const off = c.inbox.subscribe((items) => seen.push(items.map((e) => e.taskId)));
    await waitFor(() => seen.at(-1)?.join() === "old", "the listed inbox");
    await waitFor(() => c.live.socket.connected, "connected");
    server.pushInbox("u-1", { taskId: "new", kind: "export", state: "completed", seq: 9, finishedAt: "2026-01-02T10:00:00Z" });
    await waitFor(() => seen.at(-1)?.join() === "new,old", "the pushed item, first");
    expect(await c.inbox.ack(["new", "old"])).toEqual(["new", "old"]);
    expect(server.acks).toEqual([{ ids: ["new", "old"], via: "socket" }]);
    expect(c.inbox.items()).toEqual([]);
    expect(seen.at(-1)).toEqual([]);
    off();
  });
});
