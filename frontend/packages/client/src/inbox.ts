// The inbox: the finished tasks of this identity that it has not marked seen. The
// server keeps them (GET /api/v1/inbox) and pushes new ones (inbox:item) to every
// socket of the owner; marking them seen (inbox:ack, POST /api/v1/inbox/ack) sets
// the record's seenAt. InboxList is the client's copy. Pure.

import type { InboxEntry, TaskState } from "./generated/contract.js";

/** isInboxEntry checks the fields an inbox entry must carry. */
export function isInboxEntry(v: unknown): v is InboxEntry {
  if (typeof v !== "object" || v === null) return false;
  const e = v as Partial<InboxEntry>;
  return typeof e.taskId === "string" && e.taskId !== "" && typeof e.state === "string" && typeof e.finishedAt === "string";
}

const finalStates: readonly TaskState[] = ["completed", "failed", "cancelled"];

function finishedMs(e: InboxEntry): number {
  const t = Date.parse(e.finishedAt);
  return Number.isNaN(t) ? 0 : t;
}

/** InboxList holds the unseen entries by task id, newest first. */
export class InboxList {
  private readonly entries = new Map<string, InboxEntry>();
  /** Ids marked seen here: an entry pushed or listed again for them is ignored. */
  private readonly seen = new Set<string>();

  /** items returns the entries, newest first. */
  items(): InboxEntry[] {
    return [...this.entries.values()].sort((a, b) => finishedMs(b) - finishedMs(a) || (a.taskId < b.taskId ? -1 : a.taskId > b.taskId ? 1 : 0));
  }

  /** size is the number of unseen entries. */
  get size(): number {
    return this.entries.size;
  }

  /** has reports whether the task has an unseen entry. */
  has(id: string): boolean {
    return this.entries.has(id);
  }

  /** add takes a pushed entry (inbox:item); it returns whether the list changed. */
  add(e: unknown): boolean {
    if (!isInboxEntry(e) || !finalStates.includes(e.state) || this.seen.has(e.taskId)) return false;
    const old = this.entries.get(e.taskId);
    if (old && JSON.stringify(old) === JSON.stringify(e)) return false;
    this.entries.set(e.taskId, e);
    return true;
  }

  /** set replaces the list with the server's (GET /api/v1/inbox); it returns whether it changed. */
  set(list: readonly unknown[]): boolean {
    const before = JSON.stringify(this.items());
    this.entries.clear();
    for (const e of list) this.add(e);
    return JSON.stringify(this.items()) !== before;
  }

  /** markSeen removes the entries of ids for good; it returns whether the list changed. */
  markSeen(ids: Iterable<string>): boolean {
    let changed = false;
    for (const id of ids) {
      this.seen.add(id);
      changed = this.entries.delete(id) || changed;
    }
    return changed;
  }
}
