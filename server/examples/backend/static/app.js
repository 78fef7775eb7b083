// The page of the example backend: follows the user's tasks live with
// @taskwire/client. The backend gives the user's JWT at /token and starts
// tasks at /start; /api/ and /socket.io/ reach taskwire through it.
import { connStatus, createClient } from "@taskwire/client";

const token = async () => {
  const r = await fetch("/token", { cache: "no-store" });
  if (!r.ok) throw new Error(`/token: ${r.status}`);
  return r.text();
};
const client = createClient({ token });
const list = document.getElementById("tasks");
const errorBox = document.getElementById("error");
const followed = new Set();

client.onConnection((s) => {
  document.getElementById("conn").textContent = connStatus(s);
});

/** follow shows task id and keeps it up to date. */
function follow(id) {
  if (followed.has(id)) return;
  followed.add(id);
  const li = document.createElement("li");
  li.className = "task";
  li.dataset.taskId = id;
  li.dataset.state = "queued";
  li.innerHTML = '<code class="task-id"></code> <span class="task-state">queued</span> ' +
    '<progress max="100" value="0"></progress> <span class="task-percent">0</span>% ' +
    '<span class="task-rows"></span>';
  li.querySelector(".task-id").textContent = id;
  list.prepend(li);
  client.task(id).subscribe(
    (t) => {
      li.dataset.state = t.state;
      li.querySelector(".task-state").textContent = t.state;
      li.querySelector("progress").value = t.percent;
      li.querySelector(".task-percent").textContent = t.percent.toFixed(0);
      li.querySelector(".task-rows").textContent = t.result ? `${t.result.rows} rows` : "";
    },
    (err) => {
      li.dataset.state = "error";
      li.querySelector(".task-state").textContent = `error: ${err.message}`;
    },
  );
}

document.getElementById("start").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  errorBox.textContent = "";
  const rows = Number(document.getElementById("rows").value);
  const r = await fetch("/start", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ rows }),
  });
  const body = await r.json();
  if (!r.ok) {
    errorBox.textContent = body.error ?? `error ${r.status}`;
    return;
  }
  follow(body.id);
});

// The tasks the user already has, oldest first so that the newest ends on top.
client.tasks().then(
  (tasks) => tasks.reverse().forEach((t) => follow(t.id)),
  (err) => { errorBox.textContent = `could not list the tasks: ${err.message}`; },
);
