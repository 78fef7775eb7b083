// The DOM: the export form, the connection indicator and one card per task. Cards
// are created once per task and updated in place, so focus and screen reader
// position survive the stream of progress events.

import { connLabel, connStatus, connTitle, type ConnState } from "./connection";
import { capitalize, formatBytes, formatClock, formatCount, formatPercent, parseRows } from "./format";
import { elapsedMs, isFinal, remainingSeconds, type TaskStore, type TaskView } from "./state";

/** Actions are what the page can ask for. */
export interface Actions {
  exportRows(rows: number): Promise<void>;
  cancel(id: string): Promise<void>;
}

function $(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (!el) throw new Error("taskwire: missing #" + id);
  return el;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** set assigns textContent only when it differs, to leave the DOM alone otherwise. */
function setText(e: HTMLElement, text: string): void {
  if (e.textContent !== text) e.textContent = text;
}

function setAttr(e: Element, name: string, value: string | undefined): void {
  if (value === undefined) {
    if (e.hasAttribute(name)) e.removeAttribute(name);
  } else if (e.getAttribute(name) !== value) {
    e.setAttribute(name, value);
  }
}

function show(e: HTMLElement, visible: boolean): void {
  if (e.hidden === visible) e.hidden = !visible;
}

interface Card {
  root: HTMLLIElement;
  title: HTMLHeadingElement;
  badge: HTMLSpanElement;
  bar: HTMLDivElement;
  fill: HTMLDivElement;
  percent: HTMLSpanElement;
  rows: HTMLSpanElement;
  stage: HTMLSpanElement;
  time: HTMLSpanElement;
  message: HTMLParagraphElement;
  cancel: HTMLButtonElement;
  download: HTMLAnchorElement;
  /** State shown last, to announce transitions. */
  shown: TaskView["state"] | undefined;
  cancelling: boolean;
  cancelError: string | undefined;
}

const stateLabels: Record<TaskView["state"], string> = {
  queued: "Queued",
  running: "Running",
  completed: "Completed",
  failed: "Failed",
  cancelled: "Cancelled",
};

/** title names a task for people: "Export of 100,000 rows". */
export function taskTitle(t: TaskView, locale?: string): string {
  const kind = t.kind === "export" || t.kind === undefined ? "Export" : capitalize(t.kind);
  return t.rows !== undefined ? `${kind} of ${formatCount(t.rows, locale)} rows` : kind;
}

export class View {
  private readonly list = $("tasks") as HTMLOListElement;
  private readonly empty = $("empty");
  private readonly paused = $("paused");
  private readonly conn = $("conn");
  private readonly connLabel = $("conn-label");
  private readonly announcer = $("announcer");
  private readonly form = $("new-export") as HTMLFormElement;
  private readonly custom = $("custom");
  private readonly customInput = $("rows") as HTMLInputElement;
  private readonly formError = $("form-error");
  private readonly submit = $("export") as HTMLButtonElement;
  private readonly cards = new Map<string, Card>();
  private live = false;
  /** animateNew makes cards that appear from now on slide in (not those of the first load). */
  animateNew = false;

  constructor(
    private readonly store: TaskStore,
    private readonly actions: Actions,
    private readonly skew: () => number,
  ) {
    this.form.addEventListener("change", () => this.syncCustom());
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.onSubmit();
    });
    this.customInput.addEventListener("input", () => setText(this.formError, ""));
    this.syncCustom();
  }

  private chosenSize(): string {
    const checked = this.form.querySelector<HTMLInputElement>('input[name="size"]:checked');
    return checked?.value ?? "custom";
  }

  private syncCustom(): void {
    const custom = this.chosenSize() === "custom";
    show(this.custom, custom);
    this.customInput.required = custom;
  }

  private async onSubmit(): Promise<void> {
    setText(this.formError, "");
    let rows: number;
    const size = this.chosenSize();
    if (size === "custom") {
      const r = parseRows(this.customInput.value);
      if (!r.ok) {
        setText(this.formError, r.message);
        this.customInput.setAttribute("aria-invalid", "true");
        this.customInput.focus();
        return;
      }
      this.customInput.removeAttribute("aria-invalid");
      rows = r.rows;
    } else {
      rows = Number(size);
    }
    this.submit.disabled = true;
    setText(this.submit, "Starting…");
    try {
      await this.actions.exportRows(rows);
      this.announce(`Export of ${formatCount(rows)} rows started.`);
    } catch (err) {
      setText(this.formError, err instanceof Error ? err.message : "The export could not be started.");
    } finally {
      this.submit.disabled = false;
      setText(this.submit, "Export");
    }
  }

  /** announce reads text to screen reader users, politely. */
  announce(text: string): void {
    // Clearing first makes repeated identical messages heard again.
    this.announcer.textContent = "";
    setTimeout(() => (this.announcer.textContent = text), 50);
  }

  /** renderConn shows the connection state. */
  renderConn(s: ConnState): void {
    const status = connStatus(s);
    setAttr(this.conn, "data-status", status);
    setText(this.connLabel, connLabel(s));
    setAttr(this.conn, "title", connTitle(s));
    this.live = status === "connected";
    this.renderPaused();
  }

  private renderPaused(): void {
    const unfinished = this.store.unfinished().length > 0;
    show(this.paused, !this.live && unfinished);
    this.list.classList.toggle("is-paused", !this.live);
  }

  /** render brings every card up to date with the store. */
  render(now: number): void {
    const tasks = this.store.list();
    const ids = new Set(tasks.map((t) => t.id));
    for (const [id, card] of this.cards) {
      if (!ids.has(id)) {
        card.root.remove();
        this.cards.delete(id);
      }
    }
    // Place cards in order, touching the DOM only where the order is wrong.
    let prev: Element | null = null;
    for (const t of tasks) {
      let card = this.cards.get(t.id);
      if (!card) {
        card = this.createCard(t);
        this.cards.set(t.id, card);
      }
      const want: Element | null = prev ? prev.nextElementSibling : this.list.firstElementChild;
      if (want !== card.root) this.list.insertBefore(card.root, want);
      this.updateCard(card, t, now);
      prev = card.root;
    }
    show(this.empty, tasks.length === 0);
    this.renderPaused();
    this.renderTitle(tasks);
  }

  private renderTitle(tasks: TaskView[]): void {
    const active = tasks.filter((t) => t.state === "running");
    let title = "taskwire";
    if (active.length === 1 && active[0]) title = `${formatPercent(active[0].percent)} · ${title}`;
    else if (active.length > 1) title = `${active.length} exports running · ${title}`;
    if (document.title !== title) document.title = title;
  }

  private createCard(t: TaskView): Card {
    const root = el("li", this.animateNew ? "task task-new" : "task");
    root.tabIndex = -1;
    root.dataset["taskId"] = t.id;
    const head = el("div", "task-head");
    const title = el("h3", "task-title");
    title.id = "task-title-" + t.id;
    const badge = el("span", "badge");
    head.append(title, badge);

    const bar = el("div", "bar");
    bar.setAttribute("role", "progressbar");
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", "100");
    bar.setAttribute("aria-labelledby", title.id);
    const fill = el("div", "bar-fill");
    bar.append(fill);

    const meta = el("p", "task-meta");
    const percent = el("span", "task-percent");
    const rows = el("span", "task-rows");
    const stage = el("span", "task-stage");
    const time = el("span", "task-time");
    meta.append(percent, rows, stage, time);

    const message = el("p", "task-message");
    const actions = el("div", "task-actions");
    const cancel = el("button", "button button-quiet", "Cancel");
    cancel.type = "button";
    const download = el("a", "button button-soft download");
    download.setAttribute("download", "");
    actions.append(cancel, download);

    root.append(head, bar, meta, message, actions);
    const card: Card = {
      root, title, badge, bar, fill, percent, rows, stage, time, message, cancel, download,
      shown: undefined, cancelling: false, cancelError: undefined,
    };
    cancel.addEventListener("click", () => void this.onCancel(card, t.id));
    return card;
  }

  private async onCancel(card: Card, id: string): Promise<void> {
    const hadFocus = document.activeElement === card.cancel;
    card.cancelling = true;
    card.cancelError = undefined;
    this.render(Date.now());
    try {
      await this.actions.cancel(id);
    } catch (err) {
      card.cancelError = "Could not cancel: " + (err instanceof Error ? err.message : String(err));
    } finally {
      card.cancelling = false;
      this.render(Date.now());
      // The button may be gone now; keep keyboard users on this card.
      if (hadFocus && (card.cancel.hidden || card.cancel.disabled)) card.root.focus();
    }
  }

  private updateCard(card: Card, t: TaskView, now: number): void {
    const final = isFinal(t.state);
    const cancelPending = !final && (t.cancelRequested || card.cancelling);
    setAttr(card.root, "data-state", t.state);
    setAttr(card.root, "data-cancelling", cancelPending ? "true" : undefined);
    setText(card.title, taskTitle(t));
    setText(card.badge, cancelPending ? "Cancelling" : stateLabels[t.state]);

    // Progress.
    const pct = t.state === "completed" ? 100 : t.percent;
    const now100 = Math.floor(pct);
    setAttr(card.bar, "aria-valuenow", String(now100));
    const total = t.total || t.rows || 0;
    const rowsText = total > 0 ? `${formatCount(t.done)} of ${formatCount(total)} rows` : "";
    setAttr(card.bar, "aria-valuetext", [formatPercent(pct), rowsText].filter(Boolean).join(", "));
    const scale = `scaleX(${(pct / 100).toFixed(4)})`;
    if (card.fill.style.transform !== scale) card.fill.style.transform = scale;

    setText(card.percent, formatPercent(pct));
    setText(card.rows, rowsText);
    let stage = "";
    if (t.state === "queued") stage = t.nextAttemptAt ? this.retryText(t, now) : "Waiting for a worker";
    else if (t.state === "running") stage = cancelPending ? "Stopping" : capitalize(t.stage || "running");
    setText(card.stage, stage);

    const elapsed = elapsedMs(t, now, this.skew());
    const parts: string[] = [];
    if (elapsed !== undefined) parts.push(final ? `took ${formatClock(elapsed / 1000)}` : `${formatClock(elapsed / 1000)} elapsed`);
    const left = remainingSeconds(t, now);
    if (left !== undefined && !cancelPending) parts.push(left < 1 ? "almost done" : `about ${formatClock(Math.ceil(left))} left`);
    setText(card.time, parts.join(" · "));

    // Outcome.
    let message = "";
    if (t.state === "failed") message = t.error?.message ? capitalize(t.error.message) : "The task failed.";
    else if (t.state === "cancelled") message = "Cancelled. Nothing was kept.";
    else if (card.cancelError) message = card.cancelError;
    else if (t.attempts > 1 && !final) message = `Attempt ${t.attempts} of ${t.maxAttempts || t.attempts}: the previous worker stopped.`;
    setText(card.message, message);
    show(card.message, message !== "");
    setAttr(card.message, "role", t.state === "failed" || card.cancelError ? "alert" : undefined);

    show(card.cancel, !final);
    card.cancel.disabled = cancelPending;
    setText(card.cancel, cancelPending ? "Cancelling…" : "Cancel");
    setAttr(card.cancel, "aria-label", cancelPending ? undefined : `Cancel ${taskTitle(t).toLowerCase()}`);

    const r = t.state === "completed" ? t.result : undefined;
    show(card.download, r !== undefined);
    if (r) {
      setAttr(card.download, "href", r.url);
      setText(card.download, `Download CSV · ${formatBytes(r.bytes)}`);
      setAttr(card.download, "aria-label", `Download CSV, ${formatBytes(r.bytes)}, ${formatCount(r.rows)} rows`);
    }

    if (card.shown !== undefined && card.shown !== t.state && final) {
      const name = taskTitle(t);
      if (t.state === "completed") this.announce(`${name} completed. Download ready, ${formatBytes(r?.bytes ?? 0)}.`);
      else if (t.state === "failed") this.announce(`${name} failed: ${message}`);
      else this.announce(`${name} cancelled.`);
    }
    card.shown = t.state;
  }

  private retryText(t: TaskView, now: number): string {
    const at = Date.parse(t.nextAttemptAt ?? "") - this.skew();
    if (Number.isNaN(at)) return "Retrying soon";
    const s = Math.ceil((at - now) / 1000);
    return s > 0 ? `Retrying in ${formatClock(s)}` : "Retrying now";
  }
}
