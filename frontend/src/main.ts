// The taskwire web app: start tasks of any kind the workers serve, watch them live,
// get their results, share a task's progress with a read-only viewer link.
//
// /?view=<token>&task=<id> is a viewer link: the page shows that one task, read-only,
// followed with the viewer token through @taskwire/client.
//
// The owner's page also shows the finished tasks not seen yet (the inbox) under a
// bell in the header, and marks them seen when their list is opened.

import { Api, ApiError, createClient, Live, TaskStore } from "@taskwire/client";
import { Notices } from "./notices";
import { View } from "./view";

const query = new URLSearchParams(location.search);
const viewToken = query.get("view");
const viewTask = query.get("task");

/** viewer shows the one task of a viewer link. */
function viewer(token: string, id: string): void {
  const client = createClient({ token });
  let frame = 0;
  const schedule = () => {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      view.render(Date.now());
    });
  };
  const view = new View(
    client.store,
    { start: async () => undefined, cancel: async () => undefined, clear: () => undefined, reloadKinds: () => undefined },
    () => client.api.skewMs,
  );
  client.onConnection((s) => view.renderConn(s));
  client.task(id).subscribe(schedule, (err) => {
    view.renderGone(
      err instanceof ApiError && err.code === "unauthorized"
        ? "This link has expired. Ask whoever shared it for a new one."
        : "This task no longer exists, or the link is not for it.",
    );
  });
  client.kinds().then((kinds) => view.renderKinds(kinds), () => undefined);
  view.render(Date.now());
  setInterval(() => {
    if (client.store.unfinished().length > 0) view.render(Date.now());
  }, 1000);
}

/** Where the ids of cleared tasks are remembered, so a reload does not bring them back. */
const clearedKey = "taskwire.cleared";
/** The most cleared ids remembered (the server lists fewer tasks than that). */
const maxCleared = 1000;

function loadCleared(): string[] {
  try {
    const v: unknown = JSON.parse(localStorage.getItem(clearedKey) ?? "[]");
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
  } catch {
    return [];
  }
}

function saveCleared(ids: string[]): void {
  try {
    if (ids.length === 0) localStorage.removeItem(clearedKey);
    else localStorage.setItem(clearedKey, JSON.stringify(ids.slice(-maxCleared)));
  } catch {
    // Storage is full or disabled: clearing still works until the next reload.
  }
}

/** owner is the page of this browser's own identity. */
function owner(): void {
  const store = new TaskStore(loadCleared());
  const api = new Api();

  let frame = 0;
  const schedule = (): void => {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      view.render(Date.now());
    });
  };

  const live = new Live(store, api, {
    tasks: schedule,
    conn: (s) => view.renderConn(s),
    kinds: (kinds, error) => {
      view.renderKinds(kinds, error);
      notices.setKinds(kinds);
    },
    cleared: saveCleared,
    inbox: (items) => notices.update(items),
  });

  const notices = new Notices({
    ack: (ids) => live.ackInbox(ids),
    open: (id) => {
      const li = document.querySelector<HTMLElement>(`li.task[data-task-id="${CSS.escape(id)}"]`);
      if (!li) return;
      li.scrollIntoView({ block: "center", behavior: "smooth" });
      li.focus({ preventScroll: true });
    },
  });

  const view = new View(
    store,
    {
      start: async (kind, params, total) => {
        await live.startTask(kind, params, total);
      },
      share: async (id) => {
        const v = await api.createViewer(id);
        const url = new URL("/", location.href);
        url.searchParams.set("view", v.token);
        url.searchParams.set("task", id);
        return { url: url.toString(), expiresAt: v.expiresAt };
      },
      cancel: (id) => live.cancel(id),
      clear: (ids) => {
        live.clear(ids);
        view.render(Date.now());
      },
      reloadKinds: () => void live.refreshKinds(),
    },
    () => api.skewMs,
  );

  // Another tab cleared tasks: hide them here too.
  window.addEventListener("storage", (e) => {
    if (e.key !== clearedKey) return;
    const ids = loadCleared().filter((id) => !store.isCleared(id));
    if (ids.length > 0) live.clear(ids);
  });

  view.renderConn(live.connState);
  view.render(Date.now());
  // Elapsed time and ETA move between events too. Background tabs get no animation
  // frames, so the tick renders directly.
  setInterval(() => {
    if (store.unfinished().length > 0) view.render(Date.now());
  }, 1000);

  const boot = async (attempt = 0): Promise<void> => {
    try {
      await live.start();
      view.animateNew = true;
    } catch (err) {
      console.warn("taskwire: start failed", err);
      setTimeout(() => void boot(attempt + 1), Math.min(10000, 500 * 2 ** attempt));
    }
  };
  void boot();
}

if (viewToken && viewTask) viewer(viewToken, viewTask);
else owner();
