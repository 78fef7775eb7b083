// The taskwire web app: start tasks of any kind the workers serve, watch them live,
// get their results.

import { Api } from "@taskwire/client";
import { Live } from "@taskwire/client";
import { TaskStore } from "@taskwire/client";
import { View } from "./view";

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

const store = new TaskStore(loadCleared());
const api = new Api();

let frame = 0;
function schedule(): void {
  if (frame) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    view.render(Date.now());
  });
}

const live = new Live(store, api, {
  tasks: schedule,
  conn: (s) => view.renderConn(s),
  kinds: (kinds, error) => view.renderKinds(kinds, error),
  cleared: saveCleared,
});

const view = new View(
  store,
  {
    start: async (kind, params, total) => {
      await live.startTask(kind, params, total);
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

async function boot(attempt = 0): Promise<void> {
  try {
    await live.start();
    view.animateNew = true;
  } catch (err) {
    console.warn("taskwire: start failed", err);
    setTimeout(() => void boot(attempt + 1), Math.min(10000, 500 * 2 ** attempt));
  }
}
void boot();
