// @vitest-environment happy-dom
// The React hooks against a real client and FakeServer: useTask follows one task,
// useStartTask starts one, useTasks lists and follows the identity's tasks,
// useInbox lists the unseen finished tasks and marks them seen.

import { act, cleanup, render, screen, waitFor as rtlWaitFor } from "@testing-library/react";
import { createElement as h, type ReactNode } from "react";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createClient, type TaskwireClient } from "./client.js";
import { TaskwireProvider, useInbox, useStartTask, useTask, useTasks } from "./react.js";
import { FakeServer, record, waitFor } from "./testing/fake.js";

let server: FakeServer;
let client: TaskwireClient;

beforeEach(async () => {
  server = new FakeServer();
  await server.listen();
  server.tokens.set("tok", { sub: "u-1" });
  client = createClient({ url: server.url, token: "tok", transports: ["websocket"] });
});

afterEach(async () => {
  cleanup();
  client.close();
  await server.close();
});

function wrap(children: ReactNode): ReactNode {
  return h(TaskwireProvider, { client }, children);
}

function Task({ id }: { id: string }): ReactNode {
  const { task, error } = useTask(id);
  if (error) return h("p", { "data-testid": "state" }, "error: " + error.message);
  if (!task) return h("p", { "data-testid": "state" }, "loading");
  return h("p", { "data-testid": "state" }, `${task.state} ${task.percent}%`);
}

const opts = { timeout: 5000 };

describe("useTask", () => {
  it("shows the task's state and every change", async () => {
    server.add(record("a", { state: "running", seq: 1, percent: 10 }), "u-1");
    render(wrap(h(Task, { id: "a" })));
    await rtlWaitFor(() => expect(screen.getByTestId("state").textContent).toBe("running 10%"), opts);
    await waitFor(() => client.live.socket.connected && server.subscribed.includes("a"), "the subscribe");
    act(() => server.emit("task:progress", { taskId: "a", seq: 2, percent: 55, done: 55, total: 100, stage: "rows" }));
    await rtlWaitFor(() => expect(screen.getByTestId("state").textContent).toBe("running 55%"), opts);
    act(() => server.emit("task:completed", { taskId: "a", seq: 3, resultUrl: "/r", rows: 100, bytes: 10, result: { url: "/r", rows: 100, bytes: 10, filename: "a.csv", contentType: "text/csv" } }));
    await rtlWaitFor(() => expect(screen.getByTestId("state").textContent).toBe("completed 100%"), opts);
  });

  it("says when the task is not found", async () => {
    render(wrap(h(Task, { id: "nope" })));
    await rtlWaitFor(() => expect(screen.getByTestId("state").textContent).toMatch(/^error: /), opts);
  });
});

describe("useStartTask", () => {
  it("starts a task and gives its id", async () => {
    let started: Promise<string> | undefined;
    function Start(): ReactNode {
      const { start, taskId, pending } = useStartTask("export");
      return h(
        "div",
        null,
        h("button", { onClick: () => (started = start({ rows: 5 })) }, "start"),
        h("p", { "data-testid": "id" }, pending ? "pending" : (taskId ?? "none")),
        taskId ? h(Task, { id: taskId }) : null,
      );
    }
    render(wrap(h(Start)));
    act(() => screen.getByText("start").click());
    await act(async () => {
      await started;
    });
    expect(screen.getByTestId("id").textContent).toBe("t1");
    await rtlWaitFor(() => expect(screen.getByTestId("state").textContent).toBe("queued 0%"), opts);
    expect(server.records.get("t1")?.params).toEqual({ rows: 5 });
  });
});

describe("useTasks", () => {
  it("lists the identity's tasks and keeps them live", async () => {
    server.add(record("a", { state: "running", seq: 1, percent: 20, createdAt: "2026-01-02T10:00:00Z" }), "u-1");
    server.add(record("b", { state: "completed", seq: 5, percent: 100, createdAt: "2026-01-02T11:00:00Z" }), "u-1");
    server.add(record("c"), "u-2");
    function List(): ReactNode {
      const { tasks, loading } = useTasks();
      if (loading) return h("p", null, "loading");
      return h("ul", null, ...tasks.map((t) => h("li", { key: t.id }, `${t.id} ${t.state} ${t.percent}`)));
    }
    render(wrap(h(List)));
    await rtlWaitFor(() => expect(screen.getAllByRole("listitem").map((li) => li.textContent)).toEqual(["b completed 100", "a running 20"]), opts);
    await waitFor(() => client.live.socket.connected && server.subscribed.includes("a"), "the subscribe");
    act(() => server.emit("task:progress", { taskId: "a", seq: 2, percent: 80, done: 80, total: 100, stage: "rows" }));
    await rtlWaitFor(() => expect(screen.getAllByRole("listitem").map((li) => li.textContent)).toEqual(["b completed 100", "a running 80"]), opts);
  });
});

function InboxView(): ReactNode {
  const { items, loading, ack } = useInbox();
  return h(
    "div",
    null,
    h("p", { "data-testid": "inbox" }, loading ? "loading" : items.map((e) => e.taskId).join(",") || "empty"),
    h("button", { onClick: () => void ack() }, "seen"),
  );
}

describe("useInbox", () => {
  it("shows the unseen tasks, live, and marks them seen", async () => {
    server.inboxes.set("u-1", [{ taskId: "a", kind: "export", state: "completed", seq: 3, finishedAt: "2026-01-02T09:00:00Z" }]);
    render(wrap(h(InboxView)));
    await rtlWaitFor(() => expect(screen.getByTestId("inbox").textContent).toBe("a"), opts);
    await waitFor(() => client.live.socket.connected, "connected");
    act(() => server.pushInbox("u-1", { taskId: "b", kind: "export", state: "cancelled", seq: 2, finishedAt: "2026-01-02T10:00:00Z" }));
    await rtlWaitFor(() => expect(screen.getByTestId("inbox").textContent).toBe("b,a"), opts);
    act(() => screen.getByRole("button", { name: "seen" }).click());
    await rtlWaitFor(() => expect(screen.getByTestId("inbox").textContent).toBe("empty"), opts);
    expect(server.acks.at(-1)?.ids).toEqual(["b", "a"]);
  });
});
