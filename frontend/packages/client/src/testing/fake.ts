// FakeServer stands in for taskwire in the package's unit tests: Node's Socket.IO
// server and a small HTTP API on one port, speaking the token contract (bearer
// tokens on HTTP, auth.token in the handshake, viewer tokens scoped to one task,
// auth:refresh, task:token_expired), delivery receipts (task:received, refused to
// viewers) and the inbox (GET /api/v1/inbox, POST /api/v1/inbox/ack, inbox:ack,
// inbox:item to room user:<sub>). Not part of the package.

import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from "node:http";
import { Server, type Socket as ServerSocket } from "socket.io";
import type { InboxEntry, TaskRecord } from "../generated/contract.js";

/** record returns a task record with defaults. */
export function record(id: string, over: Partial<TaskRecord> = {}): TaskRecord {
  return {
    taskId: id,
    kind: "export",
    state: "queued",
    seq: 0,
    percent: 0,
    done: 0,
    total: 100,
    stage: "",
    attempts: 1,
    maxAttempts: 3,
    params: { rows: 100 },
    createdAt: "2026-01-02T10:00:00Z",
    ...over,
  };
}

/** jwt returns an unsigned JWT-shaped token for sub expiring at exp (seconds). */
export function jwt(sub: string, exp: number, nonce = ""): string {
  const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${enc({ alg: "HS256", typ: "JWT" })}.${enc({ sub, exp, n: nonce })}.sig`;
}

interface Identity {
  sub: string;
  /** Set for a viewer token: the one task it sees. */
  viewerOf?: string;
}

export class FakeServer {
  readonly http: HttpServer;
  readonly io: Server;
  readonly records = new Map<string, TaskRecord>();
  readonly owners = new Map<string, string>();
  /** Valid tokens and whom they identify. */
  readonly tokens = new Map<string, Identity>();
  /** Tokens sent with auth:refresh, in order. */
  readonly refreshed: string[] = [];
  /** auth.token of every handshake, in order. */
  readonly handshakes: Array<string | undefined> = [];
  /** Authorization headers of every HTTP request, in order. */
  readonly bearers: Array<string | undefined> = [];
  readonly subscribed: string[] = [];
  /** Every task:received, in order, with who sent it. */
  readonly receipts: Array<{ taskId: string; seq: number; sub: string }> = [];
  /** The unseen inbox entries of each identity. */
  readonly inboxes = new Map<string, InboxEntry[]>();
  /** Ids marked seen, in order, and how (socket or http). */
  readonly acks: Array<{ ids: string[]; via: "socket" | "http" }> = [];
  private created = 0;
  url = "";

  constructor() {
    this.http = createServer((req, res) => void this.handle(req, res));
    this.io = new Server(this.http, { path: "/socket.io/" });
    this.io.use((s, next) => {
      const token = (s.handshake.auth as { token?: string }).token;
      this.handshakes.push(token);
      const who = token !== undefined ? this.tokens.get(token) : undefined;
      if (!who) {
        const err = new Error("unauthorized") as Error & { data?: unknown };
        err.data = { code: "unauthorized", message: "token expired" };
        return next(err);
      }
      s.data = { ...who };
      next();
    });
    this.io.on("connection", (s: ServerSocket) => this.wire(s));
  }

  async listen(): Promise<string> {
    await new Promise<void>((r) => this.http.listen(0, "127.0.0.1", r));
    const addr = this.http.address();
    if (!addr || typeof addr === "string") throw new Error("no port");
    this.url = `http://127.0.0.1:${addr.port}`;
    return this.url;
  }

  async close(): Promise<void> {
    this.io.disconnectSockets(true);
    await new Promise<void>((r) => this.io.close(() => r()));
  }

  /** add stores a task of sub. */
  add(r: TaskRecord, sub: string): void {
    this.records.set(r.taskId, r);
    this.owners.set(r.taskId, sub);
  }

  /** emit sends an event to the task's room and advances the record with update. */
  emit(event: string, payload: { taskId: string; seq: number } & Record<string, unknown>, update: Partial<TaskRecord> = {}): void {
    const r = this.records.get(payload.taskId);
    if (r && payload.seq > r.seq) this.records.set(payload.taskId, { ...r, ...update, seq: payload.seq });
    this.io.to("task:" + payload.taskId).emit(event, payload);
  }

  /** pushInbox stores an inbox entry of sub and pushes it to sub's sockets. */
  pushInbox(sub: string, e: InboxEntry): void {
    this.inboxes.set(sub, [e, ...(this.inboxes.get(sub) ?? [])]);
    this.io.to("user:" + sub).emit("inbox:item", e);
  }

  private ackInbox(sub: string, ids: string[], via: "socket" | "http"): string[] {
    this.acks.push({ ids, via });
    this.inboxes.set(sub, (this.inboxes.get(sub) ?? []).filter((e) => !ids.includes(e.taskId)));
    return ids;
  }

  /** dropConnections cuts every transport, as a network loss would. */
  dropConnections(): void {
    for (const s of this.io.sockets.sockets.values()) s.conn.close();
  }

  /** expire tells every socket its token expired. */
  expire(): void {
    this.io.emit("task:token_expired", { expiresAt: new Date().toISOString() });
  }

  private sees(who: Identity, id: string): boolean {
    if (who.viewerOf !== undefined) return who.viewerOf === id && this.records.has(id);
    return this.owners.get(id) === who.sub;
  }

  private wire(s: ServerSocket): void {
    const me = s.data as Identity;
    if (me.viewerOf === undefined) void s.join("user:" + me.sub);
    s.on("task:received", (req: { taskId: string; seq: number }, ack: (r: unknown) => void) => {
      this.receipts.push({ ...req, sub: me.sub });
      if (me.viewerOf !== undefined) return ack({ error: { code: "forbidden", message: "a viewer owns no task" } });
      if (this.owners.get(req.taskId) !== me.sub) return ack({ error: { code: "not_found", message: "no such task" } });
      ack({ taskId: req.taskId, deliveredAt: "2026-01-02T10:05:00Z" });
    });
    s.on("inbox:ack", (req: { taskIds: string[] }, ack: (r: unknown) => void) => {
      if (me.viewerOf !== undefined) return ack({ error: { code: "forbidden", message: "a viewer has no inbox" } });
      ack({ taskIds: this.ackInbox(me.sub, req.taskIds, "socket") });
    });
    s.on("task:subscribe", (req: { taskId: string }, ack: (r: unknown) => void) => {
      this.subscribed.push(req.taskId);
      const who = s.data as Identity;
      const r = this.records.get(req.taskId);
      if (!r || !this.sees(who, req.taskId)) return ack({ error: { code: "not_found", message: "no such task" } });
      void s.join("task:" + req.taskId);
      ack(r);
    });
    s.on("auth:refresh", (req: { token?: string }, ack: (r: unknown) => void) => {
      this.refreshed.push(req.token ?? "");
      const who = req.token !== undefined ? this.tokens.get(req.token) : undefined;
      if (!who) return ack({ error: { code: "unauthorized", message: "bad token" } });
      if (who.sub !== (s.data as Identity).sub) return ack({ error: { code: "identity_changed", message: "another identity" } });
      ack({ ok: true, expiresAt: new Date(Date.now() + 3600_000).toISOString() });
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://x");
    if (!url.pathname.startsWith("/api/v1/")) return; // Socket.IO's
    // The React tests run in a DOM whose fetch enforces CORS.
    res.setHeader("Access-Control-Allow-Origin", "*");
    res.setHeader("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept");
    res.setHeader("Access-Control-Allow-Methods", "GET, POST, DELETE");
    if (req.method === "OPTIONS") {
      res.writeHead(204);
      res.end();
      return;
    }
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { "Content-Type": "application/json" });
      res.end(body === undefined ? "" : JSON.stringify(body));
    };
    const fail = (status: number, code: string) => send(status, { error: { code, message: code } });
    const auth = req.headers.authorization;
    this.bearers.push(auth);
    const token = auth?.startsWith("Bearer ") ? auth.slice(7) : undefined;
    const who = token !== undefined ? this.tokens.get(token) : undefined;
    if (!who) return fail(401, "unauthorized");
    let body: Record<string, unknown> = {};
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (chunks.length > 0) body = JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>;

    const parts = url.pathname.slice("/api/v1/".length).split("/");
    if (parts[0] === "inbox" && who.viewerOf === undefined) {
      if (req.method === "GET" && parts.length === 1) return send(200, { items: this.inboxes.get(who.sub) ?? [] });
      if (req.method === "POST" && parts[1] === "ack") {
        const ids = Array.isArray(body["taskIds"]) ? (body["taskIds"] as string[]) : [];
        return send(200, { taskIds: this.ackInbox(who.sub, ids, "http") });
      }
    }
    if (parts[0] !== "tasks") return fail(404, "not_found");
    const id = parts[1];
    if (id === undefined || id === "") {
      if (req.method === "GET") {
        const tasks = [...this.records.values()].filter((r) => this.sees(who, r.taskId));
        return send(200, { tasks });
      }
      if (who.viewerOf !== undefined) return fail(403, "forbidden");
      const tid = "t" + ++this.created;
      this.add(record(tid, { kind: String(body["kind"]) as TaskRecord["kind"], params: body["params"] }), who.sub);
      const sid = body["socketId"];
      if (typeof sid === "string") this.io.in(sid).socketsJoin("task:" + tid);
      return send(202, { id: tid, state: "queued" });
    }
    if (!this.sees(who, id)) return fail(404, "not_found");
    const r = this.records.get(id)!;
    if (parts[2] === "viewers" && req.method === "POST") {
      if (who.viewerOf !== undefined) return fail(403, "forbidden");
      // Shaped like the server's: a JWT whose header says it is a viewer token.
      const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
      const vt = `${enc({ alg: "HS256", typ: "taskwire-viewer+jwt" })}.${enc({ jti: id + "-" + this.tokens.size, task: id })}.sig`;
      this.tokens.set(vt, { sub: "viewer:" + vt, viewerOf: id });
      return send(201, { token: vt, expiresAt: new Date(Date.now() + 3600_000).toISOString(), taskId: id });
    }
    if (parts[2] === "result") {
      res.writeHead(200, { "Content-Type": "text/csv" });
      res.end("id\n1\n");
      return;
    }
    if (req.method === "DELETE") {
      if (who.viewerOf !== undefined) return fail(403, "forbidden");
      const next = { ...r, cancelRequested: true };
      this.records.set(id, next);
      return send(200, next);
    }
    return send(200, r);
  }
}

/** waitFor polls cond until it holds, for at most timeoutMs. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
