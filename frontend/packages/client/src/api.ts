// The HTTP API under /api/v1. Without tokens (the web app served by taskwire
// itself), the identity is the HttpOnly session cookie set by GET /api/v1/session.
// With tokens (an app's JWT, a viewer token), every request carries
// Authorization: Bearer <token>, and a refused token is fetched again once.

import type { Tokens } from "./auth.js";
import {
  MaxExportRows,
  MinExportRows,
  type HistoryEvent,
  type InboxAckReply,
  type InboxAckRequest,
  type InboxEntry,
  type TaskErrorInfo,
  type TaskRecord,
  type TaskState,
} from "./generated/contract.js";
import { isInboxEntry } from "./inbox.js";

/** CreateTaskRequest is the body of POST /api/v1/tasks. */
export interface CreateTaskRequest {
  /** Any kind the workers registered (GET /api/v1/kinds). */
  kind: string;
  params: Record<string, unknown>;
  /** A socket of this identity that must follow the task from its first event. */
  socketId?: string;
}

/** CreatedTask is the 202 answer of POST /api/v1/tasks. */
export interface CreatedTask {
  id: string;
  state: TaskState;
}

/** KindSettings are a kind's settings as GET /api/v1/kinds reports them. */
export interface KindSettings {
  maxAttempts?: number;
  timeoutSeconds?: number;
  resultMaxBytes?: number;
  progressRate?: number;
  totalParam?: string;
}

/** KindEntry is one kind of GET /api/v1/kinds. */
export interface KindEntry {
  name: string;
  title?: string;
  description?: string;
  paramsSchema: unknown;
  schemaHash?: string;
  /** Live workers serving the kind's current version. */
  workers: number;
  settings?: KindSettings;
  totalParam?: string;
  versions?: Array<{ schemaHash: string; workers: number; lastSeen?: string }>;
  /** Several versions have live workers. */
  conflict?: boolean;
}

/** StreamPage is the answer of GET /api/v1/tasks/<id>/streams/<name>?from=N. */
export interface StreamPage {
  stream: string;
  /** Index of items[0]: above the asked from when older items are gone. */
  from: number;
  count: number;
  items: unknown[];
}

/** EventsPage is the answer of GET /api/v1/tasks/<id>/events?since=N. */
export interface EventsPage {
  taskId: string;
  /** The task's seq when the events were read. */
  seq: number;
  /** The events after since, oldest first. */
  events: HistoryEvent[];
  /** false: some events after since are no longer kept (reason says why); events is then empty. */
  recovered: boolean;
  reason?: string;
  /** Set when there are more: ask again with since=next. */
  next?: number;
}

/**
 * legacyKinds stands in for GET /api/v1/kinds on a server that predates it (404):
 * such a server runs exports only.
 */
export const legacyKinds: KindEntry[] = [
  {
    name: "export",
    title: "CSV export",
    description: "Generate a CSV file of orders.",
    paramsSchema: {
      type: "object",
      properties: {
        rows: { type: "integer", minimum: MinExportRows, maximum: MaxExportRows, description: "Data rows of the CSV file." },
      },
      required: ["rows"],
      additionalProperties: false,
    },
    workers: 1,
    totalParam: "rows",
  },
];

/** TaskListAnswer is the body of GET /api/v1/tasks as read here. */
export interface TaskListAnswer {
  tasks?: TaskRecord[] | null;
}

/** KindListAnswer is the body of GET /api/v1/kinds as read here. */
export interface KindListAnswer {
  kinds?: KindEntry[] | null;
}

/** ErrorAnswer is the body of an error answer as read here. */
export interface ErrorAnswer {
  error?: Partial<TaskErrorInfo> & { details?: unknown };
}

/** ErrorDetail is one entry of an error's details (invalid_params: one per field). */
export interface ErrorDetail {
  field: string;
  message: string;
}

/** ApiError is a failed request, with the server's stable code when it sent one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: ErrorDetail[] = [],
  ) {
    super(message);
    this.name = "ApiError";
  }
}

function detailsOf(v: unknown): ErrorDetail[] {
  if (!Array.isArray(v)) return [];
  return v
    .filter((d): d is { field?: unknown; message?: unknown } => typeof d === "object" && d !== null)
    .map((d) => ({ field: typeof d.field === "string" ? d.field : "", message: typeof d.message === "string" ? d.message : "" }))
    .filter((d) => d.message !== "");
}

/**
 * skewFromDate estimates the server clock minus the local clock from an HTTP Date
 * header (whole seconds) read at local time now. Offsets under 2 s are within the
 * header's precision and reported as 0.
 */
export function skewFromDate(date: string | null, now: number): number | undefined {
  if (!date) return undefined;
  const server = Date.parse(date);
  if (Number.isNaN(server)) return undefined;
  const skew = server + 500 - now;
  return Math.abs(skew) < 2000 ? 0 : skew;
}

/** ViewerOptions are the options of a viewer token. */
export interface ViewerOptions {
  /** How long the token is valid (server default 1 h, at most 7 days). */
  ttlSeconds?: number;
  /** Whether the viewer may download the result (default false). */
  allowResult?: boolean;
}

/** ViewerToken is the answer of POST /api/v1/tasks/<id>/viewers. */
export interface ViewerToken {
  token: string;
  /** RFC 3339. */
  expiresAt: string;
  taskId: string;
}

/** Api talks to the server under base (the page's own server by default). */
export class Api {
  /** skewMs is the server clock minus the local clock, as last estimated. */
  skewMs = 0;

  /**
   * base is the API's URL prefix ("https://host/api/v1", or "/api/v1" in the page);
   * tokens, when given, authenticate every request instead of the session cookie.
   */
  constructor(
    private readonly base = "/api/v1",
    private readonly tokens?: Tokens,
  ) {}

  /** session makes sure this browser has an identity (sets the session cookie); a no-op with tokens. */
  async session(): Promise<void> {
    if (this.tokens) return;
    await this.request("GET", "/session", undefined, false);
  }

  /** createViewer asks for a read-only token for one task (owner only). */
  async createViewer(id: string, opts: ViewerOptions = {}): Promise<ViewerToken> {
    return (await this.request("POST", `/tasks/${encodeURIComponent(id)}/viewers`, opts)) as ViewerToken;
  }

  /**
   * download fetches a result URL (as the server gives it, relative to the server)
   * with this identity; the caller reads the body.
   */
  async download(url: string): Promise<Response> {
    const abs = /^https?:/i.test(url) ? url : this.base.replace(/\/api\/v1$/, "") + url;
    const res = await this.send(abs, { method: "GET" });
    if (!res.ok) throw await errorOf(res);
    return res;
  }

  /** listTasks returns this identity's recent tasks, newest first. */
  async listTasks(): Promise<TaskRecord[]> {
    const body = (await this.request("GET", "/tasks")) as TaskListAnswer;
    return Array.isArray(body.tasks) ? body.tasks : [];
  }

  /** getTask returns one task's record. */
  async getTask(id: string): Promise<TaskRecord> {
    return (await this.request("GET", "/tasks/" + encodeURIComponent(id))) as TaskRecord;
  }

  /** listKinds returns the kinds the workers serve (or served), by name. */
  async listKinds(): Promise<KindEntry[]> {
    let body: KindListAnswer;
    try {
      body = (await this.request("GET", "/kinds")) as KindListAnswer;
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return legacyKinds;
      throw err;
    }
    const kinds = Array.isArray(body?.kinds) ? body.kinds : [];
    return kinds.filter((k) => typeof k?.name === "string" && k.name !== "");
  }

  /** createTask starts a task of kind with params. */
  async createTask(kind: string, params: Record<string, unknown>, socketId: string | undefined): Promise<CreatedTask> {
    const req: CreateTaskRequest = { kind, params };
    if (socketId) req.socketId = socketId;
    return (await this.request("POST", "/tasks", req)) as CreatedTask;
  }

  /** createExport starts an export of rows rows. */
  createExport(rows: number, socketId: string | undefined): Promise<CreatedTask> {
    return this.createTask("export", { rows }, socketId);
  }

  /** getStream returns the items of a task's stream from index from on. */
  async getStream(id: string, stream: string, from: number): Promise<StreamPage> {
    const body = (await this.request(
      "GET",
      `/tasks/${encodeURIComponent(id)}/streams/${encodeURIComponent(stream)}?from=${Math.max(0, Math.floor(from))}`,
    )) as Partial<StreamPage> | undefined;
    return {
      stream: typeof body?.stream === "string" ? body.stream : stream,
      from: typeof body?.from === "number" ? body.from : from,
      count: typeof body?.count === "number" ? body.count : 0,
      items: Array.isArray(body?.items) ? body.items : [],
    };
  }

  /** getEvents returns a task's events after seq since, oldest first (GET .../events?since=N). */
  async getEvents(id: string, since: number, limit?: number): Promise<EventsPage> {
    const q = `since=${Math.max(0, Math.floor(since))}` + (limit !== undefined ? `&limit=${Math.floor(limit)}` : "");
    const body = (await this.request("GET", `/tasks/${encodeURIComponent(id)}/events?${q}`)) as Partial<EventsPage> | undefined;
    const page: EventsPage = {
      taskId: typeof body?.taskId === "string" ? body.taskId : id,
      seq: typeof body?.seq === "number" ? body.seq : since,
      events: Array.isArray(body?.events) ? body.events : [],
      recovered: body?.recovered === true,
    };
    if (typeof body?.reason === "string") page.reason = body.reason;
    if (typeof body?.next === "number") page.next = body.next;
    return page;
  }

  /** cancelTask asks to cancel a task and returns its record after the request. */
  async cancelTask(id: string): Promise<TaskRecord> {
    return (await this.request("DELETE", "/tasks/" + encodeURIComponent(id))) as TaskRecord;
  }

  /** listInbox returns the unseen finished tasks of this identity, newest first (GET /api/v1/inbox). */
  async listInbox(): Promise<InboxEntry[]> {
    const body = (await this.request("GET", "/inbox")) as Record<string, unknown> | unknown[] | undefined;
    const list = Array.isArray(body) ? body : (body?.["items"] ?? body?.["inbox"] ?? body?.["entries"]);
    return Array.isArray(list) ? list.filter(isInboxEntry) : [];
  }

  /** ackInbox marks inbox items seen (POST /api/v1/inbox/ack); it returns the ids marked. */
  async ackInbox(taskIds: string[]): Promise<string[]> {
    const req: InboxAckRequest = { taskIds };
    const body = (await this.request("POST", "/inbox/ack", req)) as Partial<InboxAckReply> | undefined;
    return Array.isArray(body?.taskIds) ? body.taskIds.filter((x): x is string => typeof x === "string") : [];
  }

  /**
   * send fetches url with this identity. A 401 is retried once: with a new
   * session (no tokens), or with a token fetched again (a token function).
   */
  private async send(url: string, init: RequestInit, retry = true): Promise<Response> {
    const headers: Record<string, string> = { ...(init.headers as Record<string, string> | undefined) };
    if (this.tokens) headers["Authorization"] = "Bearer " + (await this.tokens.get());
    let res: Response;
    try {
      res = await fetch(url, { ...init, credentials: this.tokens ? "omit" : "same-origin", headers });
    } catch {
      throw new ApiError(0, "network", "The server could not be reached.");
    }
    const skew = skewFromDate(res.headers.get("Date"), Date.now());
    if (skew !== undefined) this.skewMs = skew;
    if (res.status === 401 && retry) {
      if (!this.tokens) {
        // The session expired or the server's secret changed: get a new identity once.
        await this.session();
        return this.send(url, init, false);
      }
      if (this.tokens.refreshable) {
        this.tokens.invalidate();
        return this.send(url, init, false);
      }
    }
    return res;
  }

  private async request(method: string, path: string, body?: unknown, renewSession = true): Promise<unknown> {
    const init: RequestInit = { method, headers: { Accept: "application/json" } };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { Accept: "application/json", "Content-Type": "application/json" };
    }
    const res = await this.send(this.base + path, init, renewSession);
    if (!res.ok) throw await errorOf(res);
    const text = await res.text();
    if (!text) return undefined;
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return undefined;
    }
  }
}

/** errorOf turns a failed answer into an ApiError with the server's code. */
async function errorOf(res: Response): Promise<ApiError> {
  let data: unknown = undefined;
  try {
    const text = await res.text();
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = undefined;
  }
  const err = (data as ErrorAnswer | undefined)?.error;
  return new ApiError(
    res.status,
    err?.code ?? "http_" + res.status,
    err?.message ?? `The server answered ${res.status} ${res.statusText}.`.replace(/ \./, "."),
    detailsOf(err?.details),
  );
}
