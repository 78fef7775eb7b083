// The operator API (/api/v1/admin/), with the operator credential as a bearer
// token. Errors carry the server's code and message.

/** AdminError is a refused or failed call. */
export class AdminError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** KindQueue is the queue of one kind. */
export interface KindQueue {
  kind: string;
  length: number;
  lag: number;
  oldestWaitingMs: number;
  pending: number;
  delayed: number;
  consumers: number;
  workers: number;
}

/** Overview is GET /api/v1/admin/queue. */
export interface Overview {
  kinds: KindQueue[];
  totals: KindQueue;
  tasks: number;
}

/** WorkerInfo is a worker's heartbeat. */
export interface WorkerInfo {
  id: string;
  host: string;
  pid: number;
  kinds: string[];
  concurrency: number;
  running: string[] | null;
  version: string;
  startedAt: string;
  lastHeartbeat: string;
  expiresAt: string;
  gone?: boolean;
}

/** ServerInfo is a server's heartbeat. */
export interface ServerInfo {
  id: string;
  host: string;
  addr: string;
  sockets: number;
  operators: number;
  connections: Record<string, number>;
  version: string;
  lastHeartbeat: string;
  expiresAt: string;
}

/** AdminTask is a task record as the operator sees it. */
export interface AdminTask {
  taskId: string;
  kind: string;
  state: string;
  owner: string;
  attempts: number;
  maxAttempts: number;
  retries?: number;
  createdAt: string;
  error?: { code: string; message: string };
  [field: string]: unknown;
}

/** TaskPage is GET /api/v1/admin/tasks. */
export interface TaskPage {
  tasks: AdminTask[];
  next: string | null;
  scanned: number;
  expired: number;
}

/** FailureGroup counts failed tasks of one error code. */
export interface FailureGroup {
  code: string;
  count: number;
  kinds: Record<string, number>;
  latest: string[];
  message: string;
}

/** Filters are the task filters of the page. */
export interface Filters {
  kind?: string;
  state?: string;
  owner?: string;
  olderThan?: string;
  newerThan?: string;
}

/** tasksQuery is the query string of a page of tasks. */
export function tasksQuery(f: Filters, limit: number, cursor?: string | null): string {
  const q = new URLSearchParams();
  for (const k of ["kind", "state", "owner", "olderThan", "newerThan"] as const) {
    const v = f[k]?.trim();
    if (v) q.set(k, v);
  }
  q.set("limit", String(limit));
  if (cursor) q.set("cursor", cursor);
  return q.toString();
}

/** Admin calls the operator API with token. */
export class Admin {
  constructor(readonly token: string) {}

  async call<T>(method: "GET" | "POST", path: string): Promise<T> {
    const res = await fetch("/api/v1/admin/" + path, {
      method,
      headers: { Authorization: "Bearer " + this.token, Accept: "application/json" },
      cache: "no-store",
    });
    const body: unknown = await res.json().catch(() => null);
    if (!res.ok) {
      const e = (body as { error?: { code?: string; message?: string } } | null)?.error;
      throw new AdminError(res.status, e?.code ?? "http_" + res.status, e?.message ?? res.statusText);
    }
    return body as T;
  }

  queue = () => this.call<Overview>("GET", "queue");
  workers = () => this.call<{ workers: WorkerInfo[] }>("GET", "workers");
  servers = () => this.call<{ servers: ServerInfo[]; self: string }>("GET", "servers");
  failures = () => this.call<{ groups: FailureGroup[]; scanned: number; more: boolean }>("GET", "failures");
  tasks = (f: Filters, limit: number, cursor?: string | null) => this.call<TaskPage>("GET", "tasks?" + tasksQuery(f, limit, cursor));
  task = (id: string) => this.call<AdminTask>("GET", "tasks/" + encodeURIComponent(id));
  cancel = (id: string) => this.call<AdminTask>("POST", `tasks/${encodeURIComponent(id)}/cancel`);
  retry = (id: string) => this.call<AdminTask>("POST", `tasks/${encodeURIComponent(id)}/retry`);
  purge = () => this.call<{ removed: number; scanned: number; more: boolean }>("POST", "purge");
}

/**
 * matches reports whether a task that just appeared passes the filters: its
 * kind, state and owner; a task just created is newer than any age and older
 * than none.
 */
export function matches(t: AdminTask, f: Filters): boolean {
  if (f.kind?.trim() && t.kind !== f.kind.trim()) return false;
  if (f.state && t.state !== f.state) return false;
  if (f.owner?.trim() && t.owner !== f.owner.trim()) return false;
  return !f.olderThan?.trim();
}
