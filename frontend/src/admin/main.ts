// The operator dashboard (/admin/): the queue, the live workers and servers,
// failures by error code and every task, with cancel, retry and purge. The
// operator credential is asked once and kept in sessionStorage (this tab only).
// Changes arrive over Socket.IO on the operator namespace, pushed by the
// servers and workers: the page never polls.

import { io, type Socket } from "socket.io-client";

import { Admin, AdminError, matches, type AdminTask, type Filters, type ServerInfo, type WorkerInfo, type Overview, type FailureGroup } from "./api";

const TOKEN_KEY = "taskwire.operatorToken";
const PAGE = 50;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const state = {
  admin: null as Admin | null,
  socket: null as Socket | null,
  filters: {} as Filters,
  cursor: null as string | null,
  tasks: new Map<string, AdminTask>(),
  workers: new Map<string, WorkerInfo>(),
  servers: new Map<string, ServerInfo>(),
  open: new Set<string>(), // tasks whose record is shown
};

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}, ...kids: (Node | string)[]) {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...kids);
  return e;
}

function ago(iso: string | undefined): string {
  if (!iso) return "";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}

function millis(ms: number): string {
  if (!ms) return "–";
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.round(ms / 60_000)} min`;
}

function showError(err: unknown) {
  $("ops-error").textContent = err instanceof Error ? err.message : String(err);
}

function setConn(status: string, label: string) {
  $("conn").dataset["status"] = status;
  $("conn-label").textContent = label;
}

// --- rendering

function renderQueue(o: Overview) {
  const body = $("queue").querySelector("tbody")!;
  const row = (q: Overview["totals"], name: string) =>
    el("tr", { className: "queue-row" }, el("td", {}, name), el("td", {}, String(q.length)), el("td", {}, String(q.lag)),
      el("td", {}, String(q.pending)), el("td", {}, String(q.delayed)), el("td", {}, millis(q.oldestWaitingMs)), el("td", {}, String(q.workers)));
  const rows = o.kinds.map((q) => {
    const r = row(q, q.kind);
    r.dataset["kind"] = q.kind;
    return r;
  });
  body.replaceChildren(...rows);
  $("queue-summary").textContent = `${o.tasks} tasks indexed · ${o.totals.length} in the queues, ${o.totals.lag} waiting, ${o.totals.pending} running, ${o.totals.delayed} delayed`;
}

function renderWorkers() {
  const now = Date.now();
  for (const [id, w] of state.workers) if (Date.parse(w.expiresAt) < now) state.workers.delete(id);
  const list = [...state.workers.values()].sort((a, b) => a.id.localeCompare(b.id));
  $("workers").querySelector("tbody")!.replaceChildren(...list.map((w) => {
    const tr = el("tr", { className: "ops-worker" },
      el("td", {}, el("code", {}, w.id)), el("td", {}, `${w.host} (pid ${w.pid})`), el("td", {}, w.kinds.join(", ")),
      el("td", {}, String(w.concurrency)),
      el("td", { className: "worker-running" }, `${w.running?.length ?? 0}`, ...(w.running ?? []).map((id) => el("code", { className: "running-id" }, " " + id))),
      el("td", {}, ago(w.lastHeartbeat)), el("td", {}, w.version));
    tr.dataset["workerId"] = w.id;
    return tr;
  }));
  $("workers-empty").hidden = list.length > 0;
}

function renderServers() {
  const now = Date.now();
  for (const [id, s] of state.servers) if (Date.parse(s.expiresAt) < now) state.servers.delete(id);
  const list = [...state.servers.values()].sort((a, b) => a.id.localeCompare(b.id));
  $("servers").querySelector("tbody")!.replaceChildren(...list.map((s) => {
    const conns = Object.entries(s.connections ?? {}).map(([t, n]) => `${t} ${n}`).join(", ") || "none";
    const tr = el("tr", { className: "ops-server" }, el("td", {}, el("code", {}, s.id)), el("td", {}, s.addr), el("td", {}, String(s.sockets)),
      el("td", {}, conns), el("td", {}, String(s.operators)), el("td", {}, ago(s.lastHeartbeat)), el("td", {}, s.version));
    tr.dataset["serverId"] = s.id;
    return tr;
  }));
}

function renderFailures(groups: FailureGroup[]) {
  $("failures").querySelector("tbody")!.replaceChildren(...groups.map((g) => {
    const tr = el("tr", { className: "ops-failure" }, el("td", {}, el("code", {}, g.code || "(none)")), el("td", {}, String(g.count)),
      el("td", {}, Object.entries(g.kinds).map(([k, n]) => `${k} ${n}`).join(", ")), el("td", {}, g.message));
    tr.dataset["code"] = g.code;
    return tr;
  }));
  $("failures-empty").hidden = groups.length > 0;
}

function taskRow(t: AdminTask): HTMLTableRowElement {
  const actions = el("div", { className: "ops-actions" });
  if (t.state === "queued" || t.state === "running") {
    actions.append(el("button", { type: "button", className: "button button-small", textContent: "Cancel", onclick: (e) => act(e, "cancel", t.taskId) }));
  }
  if (t.state === "failed") {
    actions.append(el("button", { type: "button", className: "button button-small", textContent: "Retry", onclick: (e) => act(e, "retry", t.taskId) }));
  }
  for (const b of actions.querySelectorAll("button")) b.dataset["action"] = b.textContent!.toLowerCase();
  const st = el("td", { className: "ops-state" }, t.state + (t["cancelRequested"] && !["completed", "failed", "cancelled"].includes(t.state) ? " (cancelling)" : ""));
  st.dataset["state"] = t.state;
  const tr = el("tr", { className: "ops-task" }, el("td", {}, el("code", {}, t.taskId)), el("td", {}, t.kind), st, el("td", {}, t.owner),
    el("td", {}, `${t.attempts}/${t.maxAttempts}` + (t.retries ? ` · ${t.retries} retr${t.retries === 1 ? "y" : "ies"}` : "")),
    el("td", { title: t.createdAt }, ago(t.createdAt)),
    el("td", {}, t.error ? `${t.error.code}: ${t.error.message}` : ""), el("td", {}, actions));
  tr.dataset["taskId"] = t.taskId;
  tr.dataset["state"] = t.state;
  tr.onclick = () => {
    if (state.open.has(t.taskId)) state.open.delete(t.taskId);
    else state.open.add(t.taskId);
    renderTasks();
  };
  return tr;
}

function renderTasks() {
  const rows: HTMLTableRowElement[] = [];
  for (const t of state.tasks.values()) {
    rows.push(taskRow(t));
    if (state.open.has(t.taskId)) {
      const rec = el("tr", { className: "ops-task-record" }, el("td", { colSpan: 8 }, el("pre", { className: "ops-record" }, JSON.stringify(t, null, 2))));
      rec.dataset["taskId"] = t.taskId;
      rows.push(rec);
    }
  }
  $("tasks").querySelector("tbody")!.replaceChildren(...rows);
  $("more").hidden = !state.cursor;
}

// --- loading

async function loadTasks(append: boolean) {
  const admin = state.admin!;
  const page = await admin.tasks(state.filters, PAGE, append ? state.cursor : null);
  if (!append) state.tasks.clear();
  for (const t of page.tasks) state.tasks.set(t.taskId, t);
  state.cursor = page.next;
  $("tasks-note").textContent = `${state.tasks.size} shown` + (page.expired ? ` · ${page.expired} expired index entries (purge them)` : "");
  renderTasks();
}

async function loadAll() {
  const admin = state.admin!;
  const [queue, workers, servers, failures] = await Promise.all([admin.queue(), admin.workers(), admin.servers(), admin.failures(), loadTasks(false)]);
  renderQueue(queue);
  state.workers = new Map(workers.workers.map((w) => [w.id, w]));
  state.servers = new Map(servers.servers.map((s) => [s.id, s]));
  renderWorkers();
  renderServers();
  renderFailures(failures.groups);
}

let failuresTimer: ReturnType<typeof setTimeout> | undefined;
/** refreshFailures reloads the failure groups once changes pause for 300 ms. */
function refreshFailures() {
  clearTimeout(failuresTimer);
  failuresTimer = setTimeout(async () => {
    failuresTimer = undefined;
    try {
      renderFailures((await state.admin!.failures()).groups);
    } catch (err) {
      showError(err);
    }
  }, 300);
}

async function act(e: Event, action: "cancel" | "retry", id: string) {
  e.stopPropagation();
  const button = e.currentTarget as HTMLButtonElement;
  button.disabled = true;
  try {
    const t = await (action === "cancel" ? state.admin!.cancel(id) : state.admin!.retry(id));
    state.tasks.set(id, t);
    renderTasks();
    if (action === "retry") refreshFailures();
    $("ops-error").textContent = "";
  } catch (err) {
    showError(err);
    button.disabled = false;
  }
}

// --- live updates

interface TaskChange {
  taskId: string;
  state: string;
}

async function onTask(c: TaskChange) {
  const known = state.tasks.has(c.taskId);
  if (!known && c.state !== "queued") return; // not on this page
  try {
    const t = await state.admin!.task(c.taskId);
    if (!known) {
      if (!matches(t, state.filters)) return;
      state.tasks = new Map([[t.taskId, t], ...state.tasks]); // the newest first
    } else {
      state.tasks.set(t.taskId, t);
    }
    renderTasks();
  } catch (err) {
    if (!(err instanceof AdminError && err.status === 404)) showError(err);
  }
  if (c.state === "failed" || c.state === "queued") refreshFailures();
}

function connect(token: string) {
  // WebSocket first (no polling round trips before the first event), polling
  // when it cannot open.
  const socket = io("/operator", { auth: { token }, transports: ["websocket", "polling"] });
  state.socket = socket;
  setConn("connecting", "Connecting…");
  socket.on("connect", () => {
    setConn("connected", "Live");
    // What changed before this socket was there (the first load ran while it
    // connected), or while it was disconnected.
    loadAll().catch(showError);
  });
  socket.on("disconnect", () => setConn("reconnecting", "Reconnecting…"));
  socket.on("connect_error", (err: Error & { data?: { message?: string } }) => {
    setConn("offline", "Refused: " + (err.data?.message ?? err.message));
  });
  socket.on("task", (c: TaskChange) => void onTask(c));
  socket.on("worker", (w: WorkerInfo) => {
    if (w.gone) state.workers.delete(w.id);
    else state.workers.set(w.id, w);
    renderWorkers();
  });
  socket.on("server", (s: ServerInfo) => {
    state.servers.set(s.id, s);
    renderServers();
  });
  socket.on("queue", (o: Overview) => renderQueue(o));
}

// --- start

async function signIn(token: string): Promise<boolean> {
  const admin = new Admin(token);
  state.admin = admin;
  try {
    // The first load is the credential's check; the socket connects once the
    // credential is known to work.
    await loadAll();
  } catch (err) {
    state.admin = null;
    $("login-error").textContent =
      err instanceof AdminError && err.status === 403
        ? "This is a user token: only the operator credential (ADMIN_TOKEN) opens the dashboard."
        : err instanceof AdminError && err.status === 404
          ? "The operator dashboard is off on this server (ADMIN_TOKEN is not set)."
          : err instanceof Error ? err.message : String(err);
    return false;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $("login").hidden = true;
  $("dash").hidden = false;
  $("sign-out").hidden = false;
  connect(token);
  return true;
}

function showLogin() {
  $("login").hidden = false;
  $("dash").hidden = true;
  $("sign-out").hidden = true;
  setConn("offline", "Not signed in");
  $<HTMLInputElement>("token").focus();
}

$("login-form").addEventListener("submit", (e) => {
  e.preventDefault();
  $("login-error").textContent = "";
  void signIn($<HTMLInputElement>("token").value.trim());
});

$("sign-out").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  state.socket?.close();
  state.admin = null;
  showLogin();
});

$("filters").addEventListener("submit", (e) => {
  e.preventDefault();
  const data = new FormData(e.currentTarget as HTMLFormElement);
  state.filters = Object.fromEntries([...data].map(([k, v]) => [k, String(v)])) as Filters;
  state.cursor = null;
  $("ops-error").textContent = "";
  loadTasks(false).catch(showError);
});

$("more").addEventListener("click", () => loadTasks(true).catch(showError));

$("purge").addEventListener("click", async () => {
  try {
    const r = await state.admin!.purge();
    $("tasks-note").textContent = `Purged ${r.removed} expired index entries of ${r.scanned}` + (r.more ? " (more left: purge again)" : "");
  } catch (err) {
    showError(err);
  }
});

// Heartbeats end on their own: drop the expired rows and refresh the ages.
setInterval(() => {
  if (!state.admin) return;
  renderWorkers();
  renderServers();
}, 1000);

const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) {
  void signIn(saved).then((ok) => ok || showLogin());
} else {
  showLogin();
}
