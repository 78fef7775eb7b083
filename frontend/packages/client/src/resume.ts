// Resuming a task from the last seq held. Pure: no socket, no store.
//
// On every (re)connect the client sends task:subscribe {taskId, since: seq held}.
// The server joins the socket to the task's room, then reads the history, so an
// event published meanwhile may reach the socket twice: live (even before the ack)
// and in the ack's events. While the subscribe is pending, the task's live events
// are kept (Kept); when the ack comes, planResume orders what to apply:
//
//   recovered true:  the ack's events, the record, then the kept events;
//   recovered false: the record (it replaces the view: the history lacks some
//                    events), then the kept events;
//   no answer about it (no since, or a server without history): the kept events,
//                    then the record (as live events and a snapshot always were);
//
// dropping every event whose seq is not above the last one applied, so each event
// is applied exactly once, in seq order.

import type { HistoryEvent, SubscribeAck, TaskRecord } from "./generated/contract.js";

/** The most live events kept for one task while its subscribe is pending. */
export const maxKept = 10_000;

/** Kept is what arrived for one task while its resuming subscribe was pending. */
export class Kept {
  /** The live events, in arrival order. */
  readonly events: HistoryEvent[] = [];
  /** The newest record that arrived meanwhile (task:state, a list over HTTP). */
  snapshot: TaskRecord | undefined;

  /** keep adds a live event; it returns false when the buffer is full. */
  keep(event: string, data: { seq: number }): boolean {
    if (this.events.length >= maxKept) return false;
    this.events.push({ seq: data.seq, event, data });
    return true;
  }

  /** keepSnapshot remembers r when it is the newest record kept. */
  keepSnapshot(r: TaskRecord): void {
    if (!this.snapshot || r.seq >= this.snapshot.seq) this.snapshot = r;
  }
}

/** Step is one thing to apply, in order. */
export type Step =
  | { kind: "event"; event: HistoryEvent }
  /** replace: the record is authoritative, even over a newer view (recovered false). */
  | { kind: "record"; record: TaskRecord; replace: boolean };

/** recordOf returns the ack without its history fields: the task's record. */
export function recordOf(ack: SubscribeAck): TaskRecord {
  const { events: _events, recovered: _recovered, reason: _reason, ...record } = ack;
  return record;
}

function isEvent(e: unknown): e is HistoryEvent {
  if (typeof e !== "object" || e === null) return false;
  const h = e as Partial<HistoryEvent>;
  return typeof h.seq === "number" && Number.isFinite(h.seq) && typeof h.event === "string" && typeof h.data === "object" && h.data !== null;
}

/**
 * planResume returns what to apply for a subscribe ack, given the events kept
 * while it was pending and lastSeq, the seq the view held (-1: none).
 */
export function planResume(ack: SubscribeAck, kept: Kept | undefined, lastSeq: number): Step[] {
  const steps: Step[] = [];
  let last = lastSeq;
  const add = (e: HistoryEvent) => {
    if (e.seq <= last) return;
    steps.push({ kind: "event", event: e });
    last = e.seq;
  };
  const record = recordOf(ack);
  // Stable sort: live events come in seq order from one server, but not
  // necessarily across a change of replica.
  const live = [...(kept?.events ?? [])].sort((a, b) => a.seq - b.seq);
  if (ack.recovered === true) {
    for (const e of (Array.isArray(ack.events) ? ack.events : []).filter(isEvent).sort((a, b) => a.seq - b.seq)) add(e);
    steps.push({ kind: "record", record, replace: false });
    last = Math.max(last, record.seq);
    for (const e of live) add(e);
  } else if (ack.recovered === false) {
    steps.push({ kind: "record", record, replace: true });
    last = record.seq;
    for (const e of live) add(e);
  } else {
    // Nothing says what the record covers: the events first, so that none is
    // hidden by a record that already counts it.
    for (const e of live) add(e);
    steps.push({ kind: "record", record, replace: false });
    last = Math.max(last, record.seq);
  }
  if (kept?.snapshot && kept.snapshot.seq > last) steps.push({ kind: "record", record: kept.snapshot, replace: false });
  return steps;
}
