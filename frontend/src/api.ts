// The HTTP API under /api/v1. The session is an HttpOnly cookie set by
// GET /api/v1/session, so no request here carries a token.

import { MaxExportRows, MinExportRows, type TaskErrorInfo, type TaskRecord, type TaskState } from "./generated/contract";

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

/** Api talks to the server the page was loaded from. */
export class Api {
  /** skewMs is the server clock minus the local clock, as last estimated. */
  skewMs = 0;

  constructor(private readonly base = "/api/v1") {}

  /** session makes sure this browser has an identity (sets the session cookie). */
  async session(): Promise<void> {
    await this.request("GET", "/session", undefined, false);
  }

  /** listTasks returns this identity's recent tasks, newest first. */
  async listTasks(): Promise<TaskRecord[]> {
    const body = (await this.request("GET", "/tasks")) as { tasks?: TaskRecord[] | null };
    return Array.isArray(body.tasks) ? body.tasks : [];
  }

  /** getTask returns one task's record. */
  async getTask(id: string): Promise<TaskRecord> {
    return (await this.request("GET", "/tasks/" + encodeURIComponent(id))) as TaskRecord;
  }

  /** listKinds returns the kinds the workers serve (or served), by name. */
  async listKinds(): Promise<KindEntry[]> {
    let body: { kinds?: KindEntry[] | null };
    try {
      body = (await this.request("GET", "/kinds")) as { kinds?: KindEntry[] | null };
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

  /** cancelTask asks to cancel a task and returns its record after the request. */
  async cancelTask(id: string): Promise<TaskRecord> {
    return (await this.request("DELETE", "/tasks/" + encodeURIComponent(id))) as TaskRecord;
  }

  private async request(method: string, path: string, body?: unknown, renewSession = true): Promise<unknown> {
    const init: RequestInit = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { Accept: "application/json", "Content-Type": "application/json" };
    }
    let res: Response;
    try {
      res = await fetch(this.base + path, init);
    } catch {
      throw new ApiError(0, "network", "The server could not be reached.");
    }
    const skew = skewFromDate(res.headers.get("Date"), Date.now());
    if (skew !== undefined) this.skewMs = skew;
    if (res.status === 401 && renewSession) {
      // The session expired or the server's secret changed: get a new identity once.
      await this.session();
      return this.request(method, path, body, false);
    }
    let data: unknown = undefined;
    const text = await res.text();
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = undefined;
      }
    }
    if (!res.ok) {
      const err = (data as { error?: Partial<TaskErrorInfo> & { details?: unknown } } | undefined)?.error;
      throw new ApiError(
        res.status,
        err?.code ?? "http_" + res.status,
        err?.message ?? `The server answered ${res.status} ${res.statusText}.`.replace(/ \./, "."),
        detailsOf(err?.details),
      );
    }
    return data;
  }
}
