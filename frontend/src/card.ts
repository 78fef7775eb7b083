// What a task card says, as text. Pure (the locale and the time zone are
// parameters), so it is unit-tested; view.ts puts it into the DOM.

import type { KindEntry } from "@taskwire/client";
import { capitalize, formatBytes, formatCount } from "./format";
export { formatPercent as percentLabel, shownPercent } from "./format";
import { formSpec, humanize, keyParams, type FormSpec } from "./schema";
import type { ResultView, TaskView } from "@taskwire/client";

/** KindInfo is what the page knows of a kind: its entry and its form. */
export interface KindInfo {
  entry: KindEntry;
  spec: FormSpec;
}

/** kindInfo prepares a kind of GET /api/v1/kinds for the page. */
export function kindInfo(entry: KindEntry): KindInfo {
  return { entry, spec: formSpec(entry.paramsSchema) };
}

/** totalParamOf names the param whose value is the announced amount of work. */
export function totalParamOf(k: KindEntry | undefined): string | undefined {
  return k?.totalParam || k?.settings?.totalParam || undefined;
}

/** kindTitle names a kind for people: its title, else its name made readable. */
export function kindTitle(kind: string | undefined, k?: KindEntry): string {
  if (k?.title) return k.title;
  if (kind === undefined || kind === "") return "Task";
  return humanize(kind);
}

/**
 * startTime writes when a task was created: the time of day when it is today (in
 * timeZone), with the date otherwise.
 */
export function startTime(iso: string | undefined, now: number, locale?: string, timeZone?: string): string {
  if (iso === undefined) return "";
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return "";
  const tz = timeZone !== undefined ? { timeZone } : {};
  const day = (ms: number) => new Intl.DateTimeFormat("en-CA", { ...tz, year: "numeric", month: "2-digit", day: "2-digit" }).format(ms);
  const time = new Intl.DateTimeFormat(locale, { ...tz, hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" }).format(at);
  if (day(at) === day(now)) return time;
  const date = new Intl.DateTimeFormat(locale, { ...tz, month: "short", day: "numeric" }).format(at);
  return `${date}, ${time}`;
}

/** subtitle tells tasks of one kind apart: when each started and with which params. */
export function subtitle(t: TaskView, k: KindInfo | undefined, now: number, locale?: string, timeZone?: string): string {
  const parts: string[] = [];
  const when = startTime(t.createdAt, now, locale, timeZone);
  if (when) parts.push(`started ${when}`);
  parts.push(...keyParams(k?.spec, t.params));
  return capitalize(parts.join(" · "));
}

/**
 * unitOf is what done/total count: the total param's label ("rows"), or nothing.
 * When the kind names no total param, an integer param of t whose value is its
 * total is taken for it.
 */
export function unitOf(k: KindInfo | undefined, t?: TaskView): string {
  let name = totalParamOf(k?.entry);
  if (!name && k && t && t.total > 0 && typeof t.params === "object" && t.params !== null) {
    const params = t.params as Record<string, unknown>;
    name = k.spec.fields.find((f) => f.control === "integer" && params[f.name] === t.total)?.name;
  }
  if (!name) return "";
  const f = k?.spec.fields.find((x) => x.name === name);
  return (f?.label ?? humanize(name)).toLowerCase();
}

/** progressText says how much is done: "1,500 of 6,000 rows", or "" before anything is known. */
export function progressText(t: TaskView, unit: string, locale?: string): string {
  const total = t.total || t.rows || 0;
  if (total <= 0) return "";
  const text = `${formatCount(t.done, locale)} of ${formatCount(total, locale)}`;
  return unit ? `${text} ${unit}` : text;
}

/** queueText says where a queued task stands. workers is the kind's live workers, if known. */
export function queueText(t: TaskView, workers?: number, locale?: string): string {
  const parts: string[] = [];
  if (t.queuePosition !== undefined) {
    if (t.queuePosition <= 0) parts.push("Next in line");
    else if (t.queuePosition >= 1000) parts.push("1,000+ tasks ahead");
    else parts.push(`${formatCount(t.queuePosition, locale)} ${t.queuePosition === 1 ? "task" : "tasks"} ahead`);
  }
  if (t.noLiveWorker || workers === 0) parts.push("waiting for a worker");
  if (parts.length === 0) return "Waiting for a worker";
  return capitalize(parts.join(" · "));
}

/** stageText says the stage of a running task: its message, else its id made readable. */
export function stageText(t: TaskView): string {
  if (t.stageMessage) return t.stageMessage;
  return t.stage ? capitalize(t.stage) : "Running";
}

const typeNames: Record<string, string> = {
  "text/csv": "CSV",
  "application/pdf": "PDF",
  "application/json": "JSON",
  "text/plain": "Text",
  "application/zip": "ZIP",
  "image/png": "PNG",
  "image/jpeg": "JPEG",
};

/** typeName names a media type for people: "text/csv; charset=utf-8" -> "CSV". */
export function typeName(contentType: string | undefined): string {
  if (!contentType) return "";
  const base = contentType.split(";")[0]?.trim().toLowerCase() ?? "";
  return typeNames[base] ?? base;
}

/** resultInfo describes a file result: "CSV · 52 kB · 1,500 rows". */
export function resultInfo(r: ResultView, locale?: string): string {
  const parts: string[] = [];
  const type = typeName(r.contentType ?? (r.filename?.endsWith(".csv") ? "text/csv" : undefined));
  if (type) parts.push(type);
  if (r.bytes > 0 || r.value === undefined) parts.push(formatBytes(r.bytes, locale));
  if (r.rows > 0) parts.push(`${formatCount(r.rows, locale)} rows`);
  return parts.join(" · ");
}

/** downloadName is the name a download link shows. */
export function downloadName(r: ResultView): string {
  if (r.filename) return r.filename;
  const type = typeName(r.contentType);
  return type ? `${type} result` : "result";
}

/** formatValue writes a metadata value: numbers grouped, strings as they are, the rest as JSON. */
export function formatValue(v: unknown, locale?: string): string {
  if (typeof v === "number") {
    return Number.isInteger(v) ? formatCount(v, locale) : new Intl.NumberFormat(locale, { maximumSignificantDigits: 6 }).format(v);
  }
  if (typeof v === "string") return v;
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (v === null || v === undefined) return "—";
  const j = JSON.stringify(v);
  return j.length > 200 ? j.slice(0, 199) + "…" : j;
}

/** The most metadata entries a card lists. */
export const maxMetadataEntries = 24;

/** metadataEntries lists a task's metadata as [key, value] text, in the worker's order. */
export function metadataEntries(md: Record<string, unknown> | undefined, locale?: string): Array<[string, string]> {
  if (!md) return [];
  return Object.entries(md)
    .slice(0, maxMetadataEntries)
    .map(([k, v]) => [k, formatValue(v, locale)]);
}

/** The most characters of a JSON result the page pretty-prints. */
export const maxPrettyChars = 200_000;

/** prettyJson pretty-prints a JSON value, cut at maxChars. */
export function prettyJson(v: unknown, maxChars = maxPrettyChars): { text: string; cut: boolean } {
  let text: string;
  try {
    text = JSON.stringify(v, null, 2) ?? "null";
  } catch {
    text = String(v);
  }
  if (text.length <= maxChars) return { text, cut: false };
  return { text: text.slice(0, maxChars) + "\n…", cut: true };
}

/** jsonSummary says what a JSON value holds: "object, 4 keys: weights, bias, …". */
export function jsonSummary(v: unknown): string {
  if (Array.isArray(v)) return `array of ${formatCount(v.length)}`;
  if (typeof v === "object" && v !== null) {
    const keys = Object.keys(v);
    const shown = keys.slice(0, 4).join(", ");
    return `${keys.length} ${keys.length === 1 ? "key" : "keys"}${keys.length ? ": " + shown + (keys.length > 4 ? ", …" : "") : ""}`;
  }
  return JSON.stringify(v) ?? "";
}
