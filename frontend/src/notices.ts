// The notifications of finished tasks: a bell in the header with the number of
// finished tasks not seen yet, and the list of them. The server keeps the list
// (the inbox), so a task that finished while no tab was open shows here on the
// next visit; a new one arrives live (inbox:item). Opening the list marks what it
// shows seen, and so does a new one arriving while the list is open and the page
// is visible.

import type { InboxEntry, KindEntry } from "@taskwire/client";
import { kindTitle, startTime } from "./card";

/** badgeText is what the bell's badge says: the count, "99+" past 99, "" for none. */
export function badgeText(n: number): string {
  if (n <= 0) return "";
  return n > 99 ? "99+" : String(n);
}

/** bellLabel is the bell's accessible name. */
export function bellLabel(n: number): string {
  if (n <= 0) return "Finished tasks: nothing new";
  return `Finished tasks: ${n} new`;
}

/** noticeText says one entry for people: "CSV export completed", "Report failed: …". */
export function noticeText(e: InboxEntry, k?: KindEntry): string {
  const title = kindTitle(e.kind, k);
  switch (e.state) {
    case "completed":
      return `${title} completed`;
    case "cancelled":
      return `${title} was cancelled`;
    case "failed":
      return e.error?.message ? `${title} failed: ${e.error.message}` : `${title} failed`;
    default:
      return `${title} ${e.state}`;
  }
}

/** noticeTime says when it finished, as the cards say when tasks started. */
export function noticeTime(e: InboxEntry, now: number, locale?: string, timeZone?: string): string {
  const when = startTime(e.finishedAt, now, locale, timeZone);
  return when ? `Finished ${when}` : "";
}

/** NoticeActions are what the notifications ask of the page. */
export interface NoticeActions {
  /** ack marks entries seen; it resolves with the ids the server marked. */
  ack(ids: string[]): Promise<string[]>;
  /** open shows a task's card, if the page has one. */
  open(id: string): void;
}

function $(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (!el) throw new Error("taskwire: missing #" + id);
  return el;
}

/** Notices is the bell and its list. */
export class Notices {
  private readonly button = $("notices-button") as HTMLButtonElement;
  private readonly count = $("notices-count");
  private readonly panel = $("notices-panel");
  private readonly list = $("notices-list");
  private readonly empty = $("notices-empty");
  /** The unseen entries, as the server says. */
  private unseen: InboxEntry[] = [];
  /** What the open list shows: the entries unseen when it opened, and those since. */
  private shown: InboxEntry[] = [];
  private kinds = new Map<string, KindEntry>();

  constructor(private readonly actions: NoticeActions) {
    this.button.hidden = false;
    this.button.addEventListener("click", () => (this.panel.hidden ? this.open() : this.close()));
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && !this.panel.hidden) {
        this.close();
        this.button.focus();
      }
    });
    document.addEventListener("click", (e) => {
      const t = e.target;
      if (!this.panel.hidden && t instanceof Node && !this.panel.contains(t) && !this.button.contains(t)) this.close();
    });
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.markShown();
    });
    this.list.addEventListener("click", (e) => {
      const li = e.target instanceof Element ? e.target.closest<HTMLElement>("li.notice") : null;
      const id = li?.dataset["taskId"];
      if (id === undefined) return;
      this.close();
      this.actions.open(id);
    });
    this.renderBadge();
  }

  /** setKinds gives the kinds' titles. */
  setKinds(kinds: KindEntry[]): void {
    this.kinds = new Map(kinds.map((k) => [k.name, k]));
    if (!this.panel.hidden) this.renderList(Date.now());
  }

  /** update takes the unseen entries (the inbox changed). */
  update(items: InboxEntry[]): void {
    this.unseen = items;
    if (!this.panel.hidden) {
      const known = new Set(this.shown.map((e) => e.taskId));
      const fresh = items.filter((e) => !known.has(e.taskId));
      if (fresh.length > 0) {
        this.shown = [...fresh, ...this.shown];
        this.renderList(Date.now());
      }
      this.markShown();
    }
    this.renderBadge();
  }

  private open(): void {
    this.shown = this.unseen.slice();
    this.renderList(Date.now());
    this.panel.hidden = false;
    this.button.setAttribute("aria-expanded", "true");
    this.markShown();
  }

  private close(): void {
    this.panel.hidden = true;
    this.button.setAttribute("aria-expanded", "false");
  }

  /** markShown marks what the open list shows seen, when the page is looked at. */
  private markShown(): void {
    if (this.panel.hidden || document.visibilityState !== "visible") return;
    const shown = new Set(this.shown.map((e) => e.taskId));
    const ids = this.unseen.filter((e) => shown.has(e.taskId)).map((e) => e.taskId);
    if (ids.length === 0) return;
    this.actions.ack(ids).catch((err: unknown) => console.warn("taskwire: could not mark notifications seen", err));
  }

  private renderBadge(): void {
    const n = this.unseen.length;
    const text = badgeText(n);
    if (this.count.textContent !== text) this.count.textContent = text;
    this.count.hidden = text === "";
    this.button.setAttribute("aria-label", bellLabel(n));
    this.button.dataset["count"] = String(n);
  }

  private renderList(now: number): void {
    this.list.textContent = "";
    for (const e of this.shown) {
      const li = document.createElement("li");
      li.className = "notice";
      li.dataset["taskId"] = e.taskId;
      li.dataset["state"] = e.state;
      const b = document.createElement("button");
      b.type = "button";
      b.className = "notice-open";
      const title = document.createElement("span");
      title.className = "notice-title";
      title.textContent = noticeText(e, this.kinds.get(e.kind));
      const when = document.createElement("span");
      when.className = "notice-time";
      when.textContent = noticeTime(e, now);
      b.append(title, when);
      li.append(b);
      this.list.append(li);
    }
    this.empty.hidden = this.shown.length > 0;
  }
}
