// The DOM: the start form built from the kinds' schemas, the connection indicator
// and one card per task. Cards are created once per task and updated in place, so
// focus and screen reader position survive the stream of progress events.

import { ApiError, type KindEntry } from "@taskwire/client";
import {
  downloadName,
  jsonSummary,
  kindInfo,
  kindTitle,
  metadataEntries,
  percentLabel,
  prettyJson,
  progressText,
  queueText,
  resultInfo,
  shownPercent,
  stageText,
  subtitle,
  totalParamOf,
  unitOf,
  type KindInfo,
} from "./card";
import { connLabel, connStatus, connTitle, type ConnState } from "@taskwire/client";
import { formatBytes, formatClock, formatCount } from "./format";
import { boundsText, collect, initialValue, optionLabel, placeDetails, type FieldSpec, type FormSpec } from "./schema";
import { elapsedMs, isFinal, isJsonResult, remainingSeconds, type TaskStore, type TaskView } from "@taskwire/client";
import { chartData, polyline, shapeOf, tailLines, type StreamView } from "@taskwire/client";

/** Actions are what the page can ask for. */
export interface Actions {
  start(kind: string, params: Record<string, unknown>, total?: number): Promise<void>;
  cancel(id: string): Promise<void>;
  /** clear hides finished tasks (all finished ones without ids). */
  clear(ids?: string[]): void;
  /** reloadKinds lists the kinds again. */
  reloadKinds(): void;
  /**
   * share creates a read-only viewer link for a task. Absent, the page is a
   * viewer's: it shows one task and offers nothing that changes it.
   */
  share?(id: string): Promise<SharedLink>;
}

/** SharedLink is a viewer link as the page shows it. */
export interface SharedLink {
  url: string;
  /** RFC 3339. */
  expiresAt: string;
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

const svgNS = "http://www.w3.org/2000/svg";
function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string> = {}): SVGElementTagNameMap[K] {
  const e = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

/** set assigns textContent only when it differs, to leave the DOM alone otherwise. */
function setText(e: Element, text: string): void {
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

/** Form is the start form of one kind, built once per schema version. */
interface Form {
  kind: string;
  hash: string;
  spec: FormSpec;
  root: HTMLDivElement;
  /** Per field: read the raw value, show an error. */
  read: Map<string, () => string | boolean>;
  errors: Map<string, HTMLElement>;
  focus: Map<string, HTMLElement>;
}

/** StreamBox is the live view of one stream on a card. */
interface StreamBox {
  root: HTMLElement;
  head: HTMLElement;
  body: HTMLElement;
  shape: string | undefined;
  version: number;
  start: number;
}

interface Card {
  root: HTMLLIElement;
  title: HTMLHeadingElement;
  sub: HTMLParagraphElement;
  badge: HTMLSpanElement;
  bar: HTMLDivElement;
  fill: HTMLDivElement;
  percent: HTMLSpanElement;
  rows: HTMLSpanElement;
  stage: HTMLSpanElement;
  time: HTMLSpanElement;
  metadata: HTMLDListElement;
  metadataKey: string;
  streams: HTMLDivElement;
  streamBoxes: Map<string, StreamBox>;
  message: HTMLParagraphElement;
  result: HTMLDivElement;
  resultKey: string;
  cancel: HTMLButtonElement;
  clear: HTMLButtonElement;
  share: HTMLButtonElement;
  shareBox: HTMLDivElement;
  sharing: boolean;
  shareError: string | undefined;
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

/** The lines a text stream's tail shows. */
const tailSize = 200;
/** The chart's drawing box (the SVG scales to the card's width). */
const chartW = 320;
const chartH = 96;

export class View {
  private readonly list = $("tasks") as HTMLOListElement;
  private readonly empty = $("empty");
  private readonly paused = $("paused");
  private readonly conn = $("conn");
  private readonly connLabel = $("conn-label");
  private readonly announcer = $("announcer");
  private readonly form = $("new-task") as HTMLFormElement;
  private readonly kindPicker = $("kinds");
  private readonly kindsStatus = $("kinds-status");
  private readonly kindAbout = $("kind-about");
  private readonly kindNote = $("kind-note");
  private readonly fields = $("fields");
  private readonly formError = $("form-error");
  private readonly submit = $("start") as HTMLButtonElement;
  private readonly clearFinished = $("clear-finished") as HTMLButtonElement;
  private readonly cards = new Map<string, Card>();
  private readonly forms = new Map<string, Form>();
  private kinds = new Map<string, KindInfo>();
  private chosen: string | undefined;
  private starting = false;
  private live = false;
  /** animateNew makes cards that appear from now on slide in (not those of the first load). */
  animateNew = false;

  /** readOnly: the page of a viewer link (no form, no cancel, no clear, no share). */
  private readonly readOnly: boolean;

  constructor(
    private readonly store: TaskStore,
    private readonly actions: Actions,
    private readonly skew: () => number,
  ) {
    this.readOnly = actions.share === undefined;
    if (this.readOnly) {
      document.body.dataset["mode"] = "viewer";
      const panel = this.form.closest("section");
      if (panel instanceof HTMLElement) panel.hidden = true;
      setText($("tasks-title"), "Shared task");
      setText(this.empty, "Loading the shared task…");
    }
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.onSubmit();
    });
    this.kindPicker.addEventListener("change", (e) => {
      const t = e.target;
      if (t instanceof HTMLInputElement && t.name === "kind") this.choose(t.value);
    });
    this.clearFinished.addEventListener("click", () => {
      const n = this.store.finished().length;
      this.actions.clear();
      this.announce(`${n} finished ${n === 1 ? "task" : "tasks"} cleared.`);
      this.clearFinished.blur();
      (document.getElementById("tasks-title") as HTMLElement | null)?.focus?.();
    });
  }

  // The start form.

  /** renderKinds shows the kinds of GET /api/v1/kinds (error: why they could not be listed). */
  renderKinds(entries: KindEntry[], error?: string): void {
    const next = new Map<string, KindInfo>();
    for (const e of entries) next.set(e.name, kindInfo(e));
    this.kinds = next;
    if (error && entries.length === 0) {
      this.kindsStatus.textContent = "";
      this.kindsStatus.append(`Could not load the kinds of task: ${error} `);
      const retry = el("button", "button button-quiet button-small", "Try again");
      retry.type = "button";
      retry.addEventListener("click", () => this.actions.reloadKinds());
      this.kindsStatus.append(retry);
      show(this.kindsStatus, true);
    } else if (entries.length === 0) {
      setText(this.kindsStatus, "No kinds of task yet: start a worker and they appear here.");
      show(this.kindsStatus, true);
    } else {
      show(this.kindsStatus, false);
    }

    // The picker: one radio per kind, in the server's order (by name).
    const want = entries.map((e) => e.name);
    const have = [...this.kindPicker.querySelectorAll<HTMLInputElement>('input[name="kind"]')].map((i) => i.value);
    if (want.join("\n") !== have.join("\n")) {
      this.kindPicker.textContent = "";
      for (const e of entries) {
        const label = el("label", "kind-option");
        const input = el("input");
        input.type = "radio";
        input.name = "kind";
        input.value = e.name;
        const span = el("span", "kind-option-title");
        label.append(input, span);
        this.kindPicker.append(label);
      }
    }
    for (const label of this.kindPicker.querySelectorAll<HTMLLabelElement>("label.kind-option")) {
      const input = label.querySelector("input");
      const span = label.querySelector("span");
      const k = input ? this.kinds.get(input.value) : undefined;
      if (input && span && k) setText(span, kindTitle(k.entry.name, k.entry));
    }
    show(this.kindPicker, entries.length > 0);

    let chosen = this.chosen;
    if (chosen === undefined || !this.kinds.has(chosen)) chosen = entries[0]?.name;
    this.choose(chosen);
    // Cards show kind titles and params by the schema.
    this.render(Date.now());
  }

  private choose(kind: string | undefined): void {
    this.chosen = kind;
    for (const input of this.kindPicker.querySelectorAll<HTMLInputElement>('input[name="kind"]')) {
      input.checked = input.value === kind;
    }
    const k = kind !== undefined ? this.kinds.get(kind) : undefined;
    const about = k?.entry.description ?? "";
    setText(this.kindAbout, about);
    show(this.kindAbout, about !== "");
    let note = "";
    if (k && k.entry.workers === 0) note = "No worker runs this kind right now: a task waits in the queue until one starts.";
    else if (k?.entry.conflict) note = "Workers run different versions of this kind; the newest with the most workers checks the parameters.";
    setText(this.kindNote, note);
    show(this.kindNote, note !== "");

    for (const [name, f] of this.forms) {
      const current = this.kinds.get(name);
      if (!current || (current.entry.schemaHash ?? "") !== f.hash) {
        f.root.remove();
        this.forms.delete(name);
      }
    }
    let form: Form | undefined;
    if (k) {
      form = this.forms.get(k.entry.name);
      if (!form) {
        form = this.buildForm(k);
        this.forms.set(k.entry.name, form);
        this.fields.append(form.root);
      }
    }
    for (const f of this.forms.values()) show(f.root, f === form);
    setText(this.submit, this.starting ? "Starting…" : k ? `Start ${kindTitle(k.entry.name, k.entry)}` : "Start");
    this.submit.disabled = this.starting || !k;
    setText(this.formError, "");
  }

  private buildForm(k: KindInfo): Form {
    const kind = k.entry.name;
    const root = el("div", "kind-form");
    root.dataset["kind"] = kind;
    const form: Form = {
      kind,
      hash: k.entry.schemaHash ?? "",
      spec: k.spec,
      root,
      read: new Map(),
      errors: new Map(),
      focus: new Map(),
    };
    if (k.spec.fields.length === 0) root.append(el("p", "hint", "This task takes no parameters."));
    for (const f of k.spec.fields) root.append(this.buildField(form, f));
    return form;
  }

  private buildField(form: Form, f: FieldSpec): HTMLElement {
    const id = `p-${form.kind}-${f.name}`.replace(/[^A-Za-z0-9_-]/g, "_");
    const wrap = el("div", "field");
    wrap.dataset["field"] = f.name;
    const help = el("p", "hint");
    help.id = id + "-help";
    const helpText = [f.help, boundsText(f)].filter(Boolean).join(" ");
    help.textContent = helpText;
    const error = el("p", "field-error");
    error.id = id + "-error";
    error.dataset["fieldError"] = f.name;
    const describedBy = [helpText ? help.id : "", error.id].filter(Boolean).join(" ");
    const labelText = (label: HTMLElement) => {
      label.append(f.label);
      if (f.required) {
        const req = el("span", "required", " *");
        req.setAttribute("aria-hidden", "true");
        label.append(req);
      }
    };
    const init = initialValue(f);
    const clearError = () => this.fieldError(form, f.name, "");

    if (f.control === "boolean") {
      wrap.classList.add("field-check");
      const label = el("label");
      const input = el("input");
      input.type = "checkbox";
      input.id = id;
      input.name = f.name;
      input.checked = init === true;
      input.setAttribute("aria-describedby", describedBy);
      input.addEventListener("change", clearError);
      label.append(input, " ");
      labelText(label);
      wrap.append(label, help, error);
      form.read.set(f.name, () => input.checked);
      form.focus.set(f.name, input);
    } else if (f.control === "radio") {
      const set = el("fieldset", "field-choices");
      const legend = el("legend");
      labelText(legend);
      set.append(legend);
      set.setAttribute("aria-describedby", describedBy);
      const group = el("div", "segmented");
      group.style.setProperty("--n", String(Math.max(1, f.options.length)));
      const inputs: HTMLInputElement[] = [];
      f.options.forEach((o, i) => {
        const label = el("label");
        const input = el("input");
        input.type = "radio";
        input.name = id;
        input.value = String(i);
        input.checked = init === String(i);
        input.dataset["param"] = f.name;
        input.addEventListener("change", clearError);
        inputs.push(input);
        label.append(input, el("span", undefined, optionLabel(o)));
        group.append(label);
      });
      set.append(group);
      wrap.append(set, help, error);
      form.read.set(f.name, () => inputs.find((i) => i.checked)?.value ?? "");
      if (inputs[0]) form.focus.set(f.name, inputs[0]);
    } else {
      const label = el("label");
      label.htmlFor = id;
      labelText(label);
      let input: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;
      if (f.control === "select") {
        const select = el("select");
        if (!f.required || f.default === undefined) select.append(new Option(f.required ? "Choose…" : "(default)", ""));
        f.options.forEach((o, i) => select.append(new Option(optionLabel(o), String(i))));
        select.value = typeof init === "string" ? init : "";
        input = select;
      } else if (f.control === "json") {
        const area = el("textarea");
        area.rows = 3;
        area.spellcheck = false;
        area.value = typeof init === "string" ? init : "";
        input = area;
      } else {
        const text = el("input");
        if (f.control === "integer" || f.control === "number") {
          text.type = "number";
          text.inputMode = f.control === "integer" ? "numeric" : "decimal";
          if (f.min !== undefined) text.min = String(f.min);
          if (f.max !== undefined) text.max = String(f.max);
          if (f.step !== undefined) text.step = f.step;
        } else {
          text.type = "text";
          if (f.maxLength !== undefined) text.maxLength = f.maxLength;
          if (f.minLength !== undefined) text.minLength = f.minLength;
        }
        text.autocomplete = "off";
        text.spellcheck = false;
        text.value = typeof init === "string" ? init : "";
        input = text;
      }
      input.id = id;
      input.name = f.name;
      if (f.required) input.setAttribute("aria-required", "true");
      input.setAttribute("aria-describedby", describedBy);
      input.addEventListener("input", clearError);
      wrap.append(label, input, help, error);
      const inp = input;
      form.read.set(f.name, () => {
        // A number input that cannot read its text has the value "": say so.
        if (inp instanceof HTMLInputElement && inp.type === "number" && inp.validity.badInput) return "?";
        return inp.value;
      });
      form.focus.set(f.name, input);
    }
    form.errors.set(f.name, error);
    return wrap;
  }

  private fieldError(form: Form, name: string, message: string): void {
    const e = form.errors.get(name);
    if (!e) return;
    setText(e, message);
    const wrap = e.closest(".field");
    wrap?.classList.toggle("has-error", message !== "");
    const target = form.focus.get(name);
    const inputs = target?.closest("fieldset") ? target.closest("fieldset")!.querySelectorAll("input") : target ? [target] : [];
    for (const i of inputs) setAttr(i, "aria-invalid", message ? "true" : undefined);
  }

  private async onSubmit(): Promise<void> {
    if (this.starting) return;
    setText(this.formError, "");
    const kind = this.chosen;
    const k = kind !== undefined ? this.kinds.get(kind) : undefined;
    const form = kind !== undefined ? this.forms.get(kind) : undefined;
    if (!k || !form || kind === undefined) {
      setText(this.formError, "Pick a task first.");
      return;
    }
    const raw: Record<string, string | boolean> = {};
    for (const [name, read] of form.read) raw[name] = read();
    const { params, errors } = collect(form.spec, raw);
    let first: string | undefined;
    for (const f of form.spec.fields) {
      this.fieldError(form, f.name, errors[f.name] ?? "");
      if (errors[f.name] && first === undefined) first = f.name;
    }
    if (first !== undefined) {
      setText(this.formError, "Check the highlighted fields.");
      form.focus.get(first)?.focus();
      return;
    }
    const title = kindTitle(kind, k.entry);
    const totalName = totalParamOf(k.entry);
    const total = totalName !== undefined && typeof params[totalName] === "number" ? (params[totalName] as number) : undefined;
    this.starting = true;
    this.submit.disabled = true;
    setText(this.submit, "Starting…");
    try {
      await this.actions.start(kind, params, total);
      this.announce(`${title} started.`);
    } catch (err) {
      if (err instanceof ApiError && err.code === "invalid_params" && err.details.length > 0) {
        // The server's validator is the authority: show each of its findings at its field.
        const placed = placeDetails(form.spec, err.details);
        let focus: string | undefined;
        for (const f of form.spec.fields) {
          const m = placed.fields[f.name];
          if (m) {
            this.fieldError(form, f.name, m);
            focus ??= f.name;
          }
        }
        setText(this.formError, placed.form.length > 0 ? placed.form.join(" ") : "The server refused these parameters.");
        if (focus !== undefined) form.focus.get(focus)?.focus();
      } else if (err instanceof ApiError && err.code === "unknown_kind") {
        setText(this.formError, err.message);
        this.actions.reloadKinds();
      } else {
        setText(this.formError, err instanceof Error ? err.message : `The ${title.toLowerCase()} could not be started.`);
      }
    } finally {
      this.starting = false;
      this.choose(this.chosen);
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

  /** renderGone says why there is nothing to show (a viewer link that expired). */
  renderGone(message: string): void {
    setText(this.empty, message);
    setAttr(this.empty, "role", "alert");
    this.render(Date.now());
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
    const finished = tasks.filter((t) => isFinal(t.state)).length;
    show(this.clearFinished, finished > 0 && !this.readOnly);
    setText(this.clearFinished, `Clear finished (${formatCount(finished)})`);
    this.renderPaused();
    this.renderTitle(tasks);
  }

  private renderTitle(tasks: TaskView[]): void {
    const active = tasks.filter((t) => t.state === "running");
    let title = "taskwire";
    if (active.length === 1 && active[0]) title = `${percentLabel(active[0].percent)} · ${title}`;
    else if (active.length > 1) title = `${active.length} tasks running · ${title}`;
    if (document.title !== title) document.title = title;
  }

  private createCard(t: TaskView): Card {
    const root = el("li", this.animateNew ? "task task-new" : "task");
    root.tabIndex = -1;
    root.dataset["taskId"] = t.id;
    const head = el("div", "task-head");
    const names = el("div", "task-names");
    const title = el("h3", "task-title");
    title.id = "task-title-" + t.id;
    const sub = el("p", "task-sub");
    sub.id = "task-sub-" + t.id;
    names.append(title, sub);
    const badge = el("span", "badge");
    head.append(names, badge);

    const bar = el("div", "bar");
    bar.setAttribute("role", "progressbar");
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", "100");
    bar.setAttribute("aria-labelledby", `${title.id} ${sub.id}`);
    const fill = el("div", "bar-fill");
    bar.append(fill);

    const meta = el("p", "task-meta");
    const percent = el("span", "task-percent");
    const rows = el("span", "task-rows");
    const stage = el("span", "task-stage");
    const time = el("span", "task-time");
    meta.append(percent, rows, stage, time);

    const metadata = el("dl", "task-metadata");
    const streams = el("div", "task-streams");
    const message = el("p", "task-message");
    const result = el("div", "task-result");
    const actions = el("div", "task-actions");
    const cancel = el("button", "button button-quiet", "Cancel");
    cancel.type = "button";
    const download = el("a", "button button-soft download");
    download.setAttribute("download", "");
    const share = el("button", "button button-quiet task-share-button", "Share progress");
    share.type = "button";
    const clear = el("button", "button button-quiet task-clear", "Clear");
    clear.type = "button";
    actions.append(cancel, share, download, clear);
    const shareBox = el("div", "task-share");
    shareBox.hidden = true;

    root.append(head, bar, meta, metadata, streams, message, result, actions, shareBox);
    const card: Card = {
      root, title, sub, badge, bar, fill, percent, rows, stage, time, metadata, metadataKey: "", streams,
      streamBoxes: new Map(), message, result, resultKey: "", cancel, clear, share, shareBox, sharing: false,
      shareError: undefined, download, shown: undefined, cancelling: false, cancelError: undefined,
    };
    cancel.addEventListener("click", () => void this.onCancel(card, t.id));
    share.addEventListener("click", () => void this.onShare(card, t.id));
    clear.addEventListener("click", () => {
      const next = card.root.nextElementSibling ?? card.root.previousElementSibling;
      this.actions.clear([t.id]);
      this.announce(`${card.title.textContent ?? "Task"} cleared.`);
      // Keep keyboard users in the list.
      const b = next?.querySelector<HTMLElement>("button:not([hidden])");
      (b ?? (next as HTMLElement | null))?.focus();
    });
    return card;
  }

  private async onShare(card: Card, id: string): Promise<void> {
    const share = this.actions.share;
    if (!share || card.sharing) return;
    card.sharing = true;
    card.shareError = undefined;
    this.render(Date.now());
    try {
      this.showShared(card, await share(id));
    } catch (err) {
      card.shareError = "Could not share: " + (err instanceof Error ? err.message : String(err));
    } finally {
      card.sharing = false;
      this.render(Date.now());
    }
  }

  /** showShared shows a viewer link under the card, with a button that copies it. */
  private showShared(card: Card, link: SharedLink): void {
    const box = card.shareBox;
    box.textContent = "";
    const id = "share-" + (card.root.dataset["taskId"] ?? "");
    const label = el("label", "task-share-label", "Viewer link");
    label.htmlFor = id;
    const input = el("input", "task-share-url");
    input.id = id;
    input.readOnly = true;
    input.value = link.url;
    input.addEventListener("focus", () => input.select());
    const copy = el("button", "button button-soft button-small", "Copy link");
    copy.type = "button";
    const until = new Date(link.expiresAt);
    const note = el(
      "p",
      "hint task-share-note",
      Number.isNaN(until.getTime())
        ? "Anyone with this link can watch this task, read-only."
        : `Anyone with this link can watch this task, read-only, until ${until.toLocaleString()}.`,
    );
    copy.addEventListener("click", () => {
      void copyText(input).then((ok) => {
        setText(copy, ok ? "Copied" : "Select and copy");
        this.announce(ok ? "Viewer link copied." : "Could not copy: select the link and copy it.");
      });
    });
    box.append(label, input, copy, note);
    box.hidden = false;
    this.announce("Viewer link ready.");
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
    const k = t.kind !== undefined ? this.kinds.get(t.kind) : undefined;
    const cancelPending = !final && (t.cancelRequested || card.cancelling);
    setAttr(card.root, "data-state", t.state);
    setAttr(card.root, "data-kind", t.kind);
    setAttr(card.root, "data-cancelling", cancelPending ? "true" : undefined);
    const name = kindTitle(t.kind, k?.entry);
    setText(card.title, name);
    const sub = subtitle(t, k, now);
    setText(card.sub, sub);
    setText(card.badge, cancelPending ? "Cancelling" : stateLabels[t.state]);
    const longName = sub ? `${name}, ${sub.charAt(0).toLowerCase()}${sub.slice(1)}` : name;

    // Progress: the fill is exactly the label's number (no transition, no stale width).
    const pct = t.state === "completed" ? 100 : t.percent;
    const shown = shownPercent(pct);
    setAttr(card.bar, "aria-valuenow", String(Math.floor(pct)));
    const rowsText = progressText(t, unitOf(k, t));
    setAttr(card.bar, "aria-valuetext", [percentLabel(pct), rowsText].filter(Boolean).join(", "));
    const width = `${shown}%`;
    if (card.fill.style.width !== width) card.fill.style.width = width;

    setText(card.percent, percentLabel(pct));
    setText(card.rows, rowsText);
    let stage = "";
    if (t.state === "queued") stage = t.nextAttemptAt ? this.retryText(t, now) : queueText(t, k?.entry.workers);
    else if (t.state === "running") stage = cancelPending ? "Stopping" : stageText(t);
    setText(card.stage, stage);
    setAttr(card.stage, "data-stage", t.state === "running" && t.stage ? t.stage : undefined);
    setAttr(card.stage, "title", t.state === "running" && t.stage ? `Stage: ${t.stage}` : undefined);

    const elapsed = elapsedMs(t, now, this.skew());
    const parts: string[] = [];
    if (elapsed !== undefined) parts.push(final ? `took ${formatClock(elapsed / 1000)}` : `${formatClock(elapsed / 1000)} elapsed`);
    const left = remainingSeconds(t, now);
    if (left !== undefined && !cancelPending) parts.push(left < 1 ? "almost done" : `about ${formatClock(Math.ceil(left))} left`);
    setText(card.time, parts.join(" · "));

    this.updateMetadata(card, t);
    this.updateStreams(card, t);

    // Outcome.
    let message = "";
    if (t.state === "failed") message = t.error?.message ? t.error.message.charAt(0).toUpperCase() + t.error.message.slice(1) : "The task failed.";
    else if (t.state === "cancelled") message = "Cancelled. Nothing was kept.";
    else if (card.cancelError) message = card.cancelError;
    else if (card.shareError) message = card.shareError;
    else if (t.attempts > 1 && !final) message = `Attempt ${t.attempts} of ${t.maxAttempts || t.attempts}: the previous worker stopped.`;
    setText(card.message, message);
    show(card.message, message !== "");
    setAttr(card.message, "role", t.state === "failed" || card.cancelError ? "alert" : undefined);

    show(card.cancel, !final && !this.readOnly);
    show(card.share, !this.readOnly);
    card.share.disabled = card.sharing;
    setText(card.share, card.sharing ? "Sharing…" : "Share progress");
    setAttr(card.share, "aria-label", `Share the progress of ${longName}`);
    card.cancel.disabled = cancelPending;
    setText(card.cancel, cancelPending ? "Cancelling…" : "Cancel");
    setAttr(card.cancel, "aria-label", cancelPending ? undefined : `Cancel ${longName}`);
    show(card.clear, final && !this.readOnly);
    setAttr(card.clear, "aria-label", `Clear ${longName}`);

    const r = t.state === "completed" ? t.result : undefined;
    this.updateResult(card, t);
    // A viewer's link carries no right to the result.
    show(card.download, r !== undefined && r.url !== "" && !this.readOnly);
    if (r) {
      const info = resultInfo(r);
      setAttr(card.download, "href", r.url);
      setAttr(card.download, "download", r.filename ?? "");
      setText(card.download, `Download ${downloadName(r)}`);
      setAttr(card.download, "aria-label", `Download ${downloadName(r)}${info ? ", " + info : ""}`);
    }

    if (card.shown !== undefined && card.shown !== t.state && final) {
      if (t.state === "completed") this.announce(`${name} completed.${r && !isJsonResult(r) ? ` Download ready, ${formatBytes(r.bytes)}.` : ""}`);
      else if (t.state === "failed") this.announce(`${name} failed: ${message}`);
      else this.announce(`${name} cancelled.`);
    }
    card.shown = t.state;
  }

  private updateMetadata(card: Card, t: TaskView): void {
    const entries = metadataEntries(t.metadata);
    const key = JSON.stringify(entries);
    if (key === card.metadataKey) return;
    card.metadataKey = key;
    card.metadata.textContent = "";
    for (const [k, v] of entries) {
      const row = el("div", "md-row");
      row.dataset["key"] = k;
      row.append(el("dt", undefined, k), el("dd", undefined, v));
      card.metadata.append(row);
    }
    show(card.metadata, entries.length > 0);
  }

  private updateStreams(card: Card, t: TaskView): void {
    const names = Object.keys(t.streams).sort();
    for (const [name, box] of card.streamBoxes) {
      if (!(name in t.streams)) {
        box.root.remove();
        card.streamBoxes.delete(name);
      }
    }
    for (const name of names) {
      const s = t.streams[name];
      if (!s) continue;
      let box = card.streamBoxes.get(name);
      if (!box) {
        const root = el("section", "stream");
        root.dataset["stream"] = name;
        const head = el("p", "stream-head");
        const body = el("div", "stream-body");
        root.append(head, body);
        card.streams.append(root);
        box = { root, head, body, shape: undefined, version: -1, start: -1 };
        card.streamBoxes.set(name, box);
      }
      this.updateStream(box, name, s);
    }
    show(card.streams, card.streamBoxes.size > 0 && [...card.streamBoxes.values()].some((b) => !b.root.hidden));
  }

  private updateStream(box: StreamBox, name: string, s: StreamView): void {
    const count = s.start + s.items.length;
    setAttr(box.root, "data-count", String(count));
    const pending = s.known > count ? `, ${formatCount(s.known - count)} loading` : "";
    setText(box.head, `${name} · ${formatCount(count)} ${count === 1 ? "item" : "items"}${pending}`);
    show(box.root, count > 0 || s.known > 0);
    if (box.version === s.version && box.start === s.start) return;
    box.version = s.version;
    box.start = s.start;
    const shape = shapeOf(s.items);
    if (shape !== box.shape) {
      box.body.textContent = "";
      box.shape = shape;
      setAttr(box.root, "data-shape", shape);
    }
    if (shape === "chart") this.drawChart(box, s);
    else if (shape !== undefined) this.drawTail(box, s);
  }

  private drawChart(box: StreamBox, s: StreamView): void {
    const data = chartData(s.items, s.start);
    let chart = box.body.querySelector<SVGSVGElement>("svg.chart");
    let legend = box.body.querySelector<HTMLElement>(".chart-legend");
    if (!chart || !legend) {
      box.body.textContent = "";
      chart = svg("svg", { class: "chart", viewBox: `0 0 ${chartW} ${chartH}`, preserveAspectRatio: "none", role: "img" });
      chart.append(svg("line", { class: "chart-axis", x1: "0", y1: String(chartH - 0.5), x2: String(chartW), y2: String(chartH - 0.5) }));
      legend = el("p", "chart-legend");
      box.body.append(chart, legend);
    }
    const lines = [...chart.querySelectorAll("polyline")];
    data.series.forEach((series, i) => {
      let line = lines[i];
      if (!line) {
        line = svg("polyline", { class: `series series-${i}`, fill: "none" });
        chart.append(line);
        lines.push(line);
      }
      setAttr(line, "data-series", series.name);
      setAttr(line, "data-points", String(series.points.length));
      setAttr(line, "points", polyline(series, data.xMin, data.xMax, chartW, chartH));
    });
    for (const extra of lines.slice(data.series.length)) extra.remove();
    setAttr(chart, "data-points", String(data.count));
    const x = data.x ?? "item";
    const fmt = (v: number) => new Intl.NumberFormat(undefined, { maximumSignificantDigits: 4 }).format(v);
    const range = data.count > 0 ? `${x} ${fmt(data.xMin)}–${fmt(data.xMax)}` : "";
    const summary = data.series.map((se) => `${se.name} ${fmt(se.last)}`).join(", ");
    setAttr(chart, "aria-label", `Chart of ${box.root.dataset["stream"] ?? "stream"}: ${summary}${range ? `, ${range}` : ""}`);
    legend.textContent = "";
    data.series.forEach((se, i) => {
      const item = el("span", `legend-item legend-${i}`);
      item.dataset["series"] = se.name;
      const swatch = el("span", "legend-swatch");
      swatch.setAttribute("aria-hidden", "true");
      item.append(swatch, `${se.name} ${fmt(se.last)}`);
      item.title = `${se.name}: ${fmt(se.min)} to ${fmt(se.max)}`;
      legend.append(item);
    });
    if (range) legend.append(el("span", "legend-range", range));
  }

  private drawTail(box: StreamBox, s: StreamView): void {
    let pre = box.body.querySelector<HTMLPreElement>("pre.stream-tail");
    if (!pre) {
      box.body.textContent = "";
      pre = el("pre", "stream-tail");
      pre.tabIndex = 0;
      pre.setAttribute("aria-label", `Last lines of ${box.root.dataset["stream"] ?? "stream"}`);
      box.body.append(pre);
    }
    // Follow the end unless the reader scrolled up.
    const atEnd = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24;
    pre.textContent = tailLines(s.items, tailSize).join("\n");
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  }

  private updateResult(card: Card, t: TaskView): void {
    const r = t.state === "completed" ? t.result : undefined;
    const key = r ? JSON.stringify([r.url, r.bytes, r.filename, r.contentType, isJsonResult(r)]) : "";
    if (key === card.resultKey) return;
    card.resultKey = key;
    card.result.textContent = "";
    show(card.result, r !== undefined);
    if (!r) return;
    const info = el("p", "result-info", resultInfo(r));
    card.result.append(info);
    if (isJsonResult(r)) {
      const details = el("details", "result-json");
      const summary = el("summary", undefined, `Result: ${jsonSummary(r.value)}`);
      const pre = el("pre");
      pre.tabIndex = 0;
      const pretty = prettyJson(r.value);
      pre.textContent = pretty.text;
      details.append(summary, pre);
      card.result.append(details);
    }
  }

  private retryText(t: TaskView, now: number): string {
    const at = Date.parse(t.nextAttemptAt ?? "") - this.skew();
    if (Number.isNaN(at)) return "Retrying soon";
    const s = Math.ceil((at - now) / 1000);
    return s > 0 ? `Retrying in ${formatClock(s)}` : "Retrying now";
  }
}

/** copyText copies the input's text to the clipboard; false when the browser refuses. */
async function copyText(input: HTMLInputElement): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(input.value);
    return true;
  } catch {
    input.focus();
    input.select();
    try {
      return document.execCommand("copy");
    } catch {
      return false;
    }
  }
}
