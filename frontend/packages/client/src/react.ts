// @taskwire/client/react: hooks over a TaskwireClient.
//
//   <TaskwireProvider client={client}> ... </TaskwireProvider>
//   const { task, error } = useTask(id);
//   const { start, taskId, pending, error } = useStartTask("export");
//   const { tasks, error, refresh } = useTasks();
//   const { items, ack } = useInbox();
//
// Every hook takes the client from the provider, or as its last argument.

import { createContext, createElement, useCallback, useContext, useEffect, useState, type ReactNode } from "react";
import type { TaskwireClient } from "./client.js";
import type { InboxEntry } from "./generated/contract.js";
import type { TaskView } from "./state.js";

const ClientContext = createContext<TaskwireClient | null>(null);

/** TaskwireProvider makes client the one the hooks below it use. */
export function TaskwireProvider(props: { client: TaskwireClient; children?: ReactNode }): ReactNode {
  return createElement(ClientContext.Provider, { value: props.client }, props.children);
}

/** useTaskwire returns the client given, or the provider's. */
export function useTaskwire(client?: TaskwireClient): TaskwireClient {
  const c = useContext(ClientContext);
  const out = client ?? c;
  if (!out) throw new Error("taskwire: no client; wrap the tree in <TaskwireProvider client={...}> or pass one");
  return out;
}

/** UseTask is what useTask returns. */
export interface UseTask {
  /** The task's state; undefined until known. */
  task: TaskView | undefined;
  /** Set when the task does not exist (or is not this identity's). */
  error: Error | undefined;
  /** cancel asks the server to cancel the task. */
  cancel: () => Promise<void>;
}

/** useTask follows the task with id (nothing when id is undefined) while mounted. */
export function useTask(id: string | undefined, client?: TaskwireClient): UseTask {
  const c = useTaskwire(client);
  const [state, setState] = useState<{ id: string | undefined; task: TaskView | undefined; error: Error | undefined }>(() => ({
    id,
    task: id !== undefined ? c.task(id).get() : undefined,
    error: undefined,
  }));
  useEffect(() => {
    if (id === undefined) {
      setState({ id, task: undefined, error: undefined });
      return undefined;
    }
    setState({ id, task: c.task(id).get(), error: undefined });
    return c.task(id).subscribe(
      (task) => setState({ id, task, error: undefined }),
      (error) => setState({ id, task: undefined, error }),
    );
  }, [c, id]);
  const cancel = useCallback(() => (id !== undefined ? c.task(id).cancel() : Promise.resolve()), [c, id]);
  // A render between an id change and its effect shows nothing of the old task.
  if (state.id !== id) return { task: undefined, error: undefined, cancel };
  return { task: state.task, error: state.error, cancel };
}

/** UseStartTask is what useStartTask returns. */
export interface UseStartTask {
  /** start creates a task with params; it resolves with its id. */
  start: (params: Record<string, unknown>) => Promise<string>;
  /** The id of the task last started. */
  taskId: string | undefined;
  /** A start is under way. */
  pending: boolean;
  /** Why the last start failed (ApiError with the server's code). */
  error: Error | undefined;
}

/** useStartTask starts tasks of kind. */
export function useStartTask(kind: string, client?: TaskwireClient): UseStartTask {
  const c = useTaskwire(client);
  const [state, setState] = useState<{ taskId: string | undefined; pending: boolean; error: Error | undefined }>({
    taskId: undefined,
    pending: false,
    error: undefined,
  });
  const start = useCallback(
    async (params: Record<string, unknown>) => {
      setState((s) => ({ ...s, pending: true, error: undefined }));
      try {
        const t = await c.start(kind, params);
        setState({ taskId: t.id, pending: false, error: undefined });
        return t.id;
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err));
        setState((s) => ({ ...s, pending: false, error }));
        throw error;
      }
    },
    [c, kind],
  );
  return { start, ...state };
}

/** UseTasks is what useTasks returns. */
export interface UseTasks {
  /** The identity's tasks, newest first, live. */
  tasks: TaskView[];
  /** The first list has not arrived yet. */
  loading: boolean;
  /** Why the last list failed. */
  error: Error | undefined;
  /** refresh lists the tasks again. */
  refresh: () => Promise<void>;
}

/** useTasks lists the identity's tasks and keeps them live while mounted. */
export function useTasks(client?: TaskwireClient): UseTasks {
  const c = useTaskwire(client);
  const [state, setState] = useState<{ tasks: TaskView[]; loading: boolean; error: Error | undefined }>({
    tasks: [],
    loading: true,
    error: undefined,
  });
  const refresh = useCallback(async () => {
    try {
      const tasks = await c.tasks();
      setState({ tasks, loading: false, error: undefined });
    } catch (err) {
      setState((s) => ({ ...s, loading: false, error: err instanceof Error ? err : new Error(String(err)) }));
    }
  }, [c]);
  useEffect(() => {
    const off = c.onTasks((tasks) => setState((s) => ({ ...s, tasks })));
    void refresh();
    return off;
  }, [c, refresh]);
  return { ...state, refresh };
}

/** UseInbox is what useInbox returns. */
export interface UseInbox {
  /** The finished tasks not marked seen, newest first, live. */
  items: InboxEntry[];
  /** The first list has not arrived yet. */
  loading: boolean;
  /** Why the last list or ack failed. */
  error: Error | undefined;
  /** ack marks entries seen (all those shown, without ids); it resolves with the ids marked. */
  ack: (taskIds?: string[]) => Promise<string[]>;
  /** refresh lists the inbox again. */
  refresh: () => Promise<void>;
}

/** useInbox lists the identity's inbox and keeps it live while mounted. */
export function useInbox(client?: TaskwireClient): UseInbox {
  const c = useTaskwire(client);
  const [state, setState] = useState<{ items: InboxEntry[]; loading: boolean; error: Error | undefined }>(() => ({
    items: c.inbox.items(),
    loading: true,
    error: undefined,
  }));
  const fail = (err: unknown) => setState((s) => ({ ...s, loading: false, error: err instanceof Error ? err : new Error(String(err)) }));
  const refresh = useCallback(async () => {
    try {
      const items = await c.inbox.list();
      setState({ items, loading: false, error: undefined });
    } catch (err) {
      fail(err);
    }
  }, [c]);
  const ack = useCallback(
    async (ids?: string[]) => {
      try {
        return await c.inbox.ack(ids ?? c.inbox.items().map((e) => e.taskId));
      } catch (err) {
        fail(err);
        throw err;
      }
    },
    [c],
  );
  useEffect(() => {
    const off = c.inbox.subscribe((items) => setState((s) => ({ ...s, items })));
    void refresh();
    return off;
  }, [c, refresh]);
  return { ...state, ack, refresh };
}
