// The HTTP API under /api/v1. The session is an HttpOnly cookie set by
// GET /api/v1/session, so no request here carries a token.

import type { TaskErrorInfo, TaskExportParams, TaskKind, TaskRecord, TaskState } from "./generated/contract";

/** CreateTaskRequest is the body of POST /api/v1/tasks. */
export interface CreateTaskRequest {
  kind: TaskKind;
  params: TaskExportParams;
  /** A socket of this identity that must follow the task from its first event. */
  socketId?: string;
}

/** CreatedTask is the 202 answer of POST /api/v1/tasks. */
export interface CreatedTask {
  id: string;
  state: TaskState;
}

/** ApiError is a failed request, with the server's stable code when it sent one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
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

  /** createExport starts an export of rows rows. */
  async createExport(rows: number, socketId: string | undefined): Promise<CreatedTask> {
    const req: CreateTaskRequest = { kind: "export", params: { rows } };
    if (socketId) req.socketId = socketId;
    return (await this.request("POST", "/tasks", req)) as CreatedTask;
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
      const err = (data as { error?: Partial<TaskErrorInfo> } | undefined)?.error;
      throw new ApiError(
        res.status,
        err?.code ?? "http_" + res.status,
        err?.message ?? `The server answered ${res.status} ${res.statusText}.`.replace(/ \./, "."),
      );
    }
    return data;
  }
}
