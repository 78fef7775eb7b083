// The taskwire web app: start exports, watch them live, download the results.

import { Api } from "./api";
import { Live } from "./live";
import { TaskStore } from "./state";
import { View } from "./view";

const store = new TaskStore();
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
});

const view = new View(
  store,
  {
    exportRows: async (rows) => {
      await live.startExport(rows);
    },
    cancel: (id) => live.cancel(id),
  },
  () => api.skewMs,
);

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
