// Named streams of a task as the page holds them, and how chunks are merged. Pure.
//
// Every task:stream chunk says the index (offset) of its first item in the stream of
// its attempt. A page holding `count` items appends a chunk whose offset is count,
// drops the items it already has when the offset is lower, and fetches the gap over
// HTTP (GET /api/v1/tasks/<id>/streams/<name>?from=count) when it is higher. The
// record's `streams` counts say how many items exist, so a reload or a resubscribe
// knows what to fetch.

/** The most items of one stream the page keeps (the server keeps as many). */
export const maxHeldItems = 10_000;

/** StreamView is one stream of the current attempt. */
export interface StreamView {
  /** Index in the stream of items[0]: above 0 once old items were dropped. */
  start: number;
  items: unknown[];
  /** The most items the server said exist (record counts, chunk ends). */
  known: number;
  /** Bumped on every change, so the view redraws only what changed. */
  version: number;
}

/** newStream returns an empty stream. */
export function newStream(): StreamView {
  return { start: 0, items: [], known: 0, version: 0 };
}

/** held is how many items of the stream the page has seen (including dropped old ones). */
export function held(s: StreamView): number {
  return s.start + s.items.length;
}

function trim(s: StreamView, max: number): void {
  const over = s.items.length - max;
  if (over > 0) {
    s.items.splice(0, over);
    s.start += over;
  }
}

/** MergeResult says what a chunk did. */
export interface MergeResult {
  /** Items were added. */
  changed: boolean;
  /** Items before the chunk are missing: fetch from this index. */
  gapFrom: number | undefined;
}

/**
 * mergeChunk applies items whose first one has index offset. A chunk past the end
 * of what is held is not applied (the page fetches from the end instead, which
 * returns this chunk's items too); one that overlaps adds only what is new.
 */
export function mergeChunk(s: StreamView, offset: number, items: readonly unknown[], max = maxHeldItems): MergeResult {
  if (!Number.isInteger(offset) || offset < 0) return { changed: false, gapFrom: undefined };
  const end = offset + items.length;
  if (end > s.known) s.known = end;
  const have = held(s);
  if (offset > have) return { changed: false, gapFrom: have };
  const fresh = items.slice(have - offset);
  if (fresh.length === 0) return { changed: false, gapFrom: undefined };
  for (const it of fresh) s.items.push(it);
  trim(s, max);
  s.version++;
  return { changed: true, gapFrom: undefined };
}

/**
 * mergeFetched applies an answer of GET .../streams/<name>?from=N: items starting at
 * index from. When from is past what is held, the items in between are gone from the
 * server too (it keeps the last maxHeldItems), so the stream restarts at from.
 */
export function mergeFetched(s: StreamView, from: number, items: readonly unknown[], max = maxHeldItems): boolean {
  if (!Number.isInteger(from) || from < 0) return false;
  let reset = false;
  if (from > held(s)) {
    s.start = from;
    s.items = [];
    s.version++;
    reset = true;
  }
  return mergeChunk(s, from, items, max).changed || reset;
}

/** noteKnown records that the server has count items of the stream. */
export function noteKnown(s: StreamView, count: number): boolean {
  if (Number.isInteger(count) && count > s.known) {
    s.known = count;
    return true;
  }
  return false;
}

/** missingFrom returns where to fetch from, or undefined when nothing is missing. */
export function missingFrom(s: StreamView): number | undefined {
  const have = held(s);
  return s.known > have ? have : undefined;
}

/** StreamShape is how a stream is best shown. */
export type StreamShape = "chart" | "text" | "json";

/** numericFields returns the numeric fields of an object item, in order. */
function numericFields(item: unknown): string[] {
  if (typeof item !== "object" || item === null || Array.isArray(item)) return [];
  return Object.entries(item)
    .filter(([, v]) => typeof v === "number" && Number.isFinite(v))
    .map(([k]) => k);
}

/**
 * shapeOf decides how to show a stream from its items: numbers, or objects with
 * numeric fields, make a chart; strings a text tail; anything else JSON lines.
 */
export function shapeOf(items: readonly unknown[]): StreamShape | undefined {
  const sample = items.slice(-50);
  if (sample.length === 0) return undefined;
  if (sample.every((x) => typeof x === "number" && Number.isFinite(x))) return "chart";
  if (sample.every((x) => numericFields(x).length > 0)) return "chart";
  if (sample.every((x) => typeof x === "string")) return "text";
  return "json";
}

/** Fields that are the x axis of a chart rather than a series, in order of preference. */
const xFields = ["epoch", "step", "iteration", "i", "index", "x", "t", "time"];

/** Series is one line of a chart. */
export interface Series {
  name: string;
  /** [x, y] points in stream order. */
  points: Array<[number, number]>;
  min: number;
  max: number;
  last: number;
}

/** ChartData is what a chart of a numeric stream draws. */
export interface ChartData {
  /** The x field ("epoch"), or undefined when x is the item's index. */
  x: string | undefined;
  xMin: number;
  xMax: number;
  series: Series[];
  /** Items drawn. */
  count: number;
}

/** The most series one chart draws. */
export const maxSeries = 4;

/**
 * chartData turns a numeric stream into series: the numbers themselves, or one
 * series per numeric field of object items over their x field (epoch, step...) or
 * their index. start is the index of items[0] in the stream.
 */
export function chartData(items: readonly unknown[], start = 0): ChartData {
  const first = items.find((x) => typeof x === "object" && x !== null);
  const fields = first !== undefined ? numericFields(first) : [];
  const x = fields.length > 1 ? xFields.find((f) => fields.includes(f)) : undefined;
  const names = first !== undefined ? fields.filter((f) => f !== x).slice(0, maxSeries) : ["value"];
  const series: Series[] = names.map((name) => ({ name, points: [], min: Infinity, max: -Infinity, last: NaN }));
  let xMin = Infinity;
  let xMax = -Infinity;
  let count = 0;
  items.forEach((item, i) => {
    let xv = start + i;
    const rec = typeof item === "object" && item !== null ? (item as Record<string, unknown>) : undefined;
    if (x !== undefined && rec) {
      const v = rec[x];
      if (typeof v === "number" && Number.isFinite(v)) xv = v;
    }
    let drawn = false;
    series.forEach((s) => {
      const v = rec ? rec[s.name] : item;
      if (typeof v !== "number" || !Number.isFinite(v)) return;
      s.points.push([xv, v]);
      if (v < s.min) s.min = v;
      if (v > s.max) s.max = v;
      s.last = v;
      drawn = true;
    });
    if (drawn) {
      count++;
      if (xv < xMin) xMin = xv;
      if (xv > xMax) xMax = xv;
    }
  });
  return { x, xMin, xMax, series: series.filter((s) => s.points.length > 0), count };
}

/**
 * polyline writes a series' points for an SVG polyline in a width x height box,
 * y scaled to [lo, hi] (the series' own range unless given), at most maxPoints
 * points (evenly thinned, the last always kept).
 */
export function polyline(
  s: Series,
  xMin: number,
  xMax: number,
  width: number,
  height: number,
  opts: { lo?: number; hi?: number; maxPoints?: number; pad?: number } = {},
): string {
  const pad = opts.pad ?? 2;
  const lo = opts.lo ?? s.min;
  const hi = opts.hi ?? s.max;
  const maxPoints = opts.maxPoints ?? 600;
  const pts = s.points;
  const stepN = pts.length > maxPoints ? pts.length / maxPoints : 1;
  const out: string[] = [];
  const px = (xv: number) => (xMax > xMin ? ((xv - xMin) / (xMax - xMin)) * (width - 2 * pad) + pad : width / 2);
  const py = (yv: number) => (hi > lo ? height - pad - ((yv - lo) / (hi - lo)) * (height - 2 * pad) : height / 2);
  const add = (p: [number, number]) => out.push(`${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`);
  for (let f = 0; f < pts.length - 1; f += stepN) {
    const p = pts[Math.floor(f)];
    if (p) add(p);
  }
  const last = pts[pts.length - 1];
  if (last) add(last);
  return out.join(" ");
}

/** tailLines returns the last n items as lines of text. */
export function tailLines(items: readonly unknown[], n: number): string[] {
  return items.slice(-n).map((x) => (typeof x === "string" ? x : JSON.stringify(x)));
}
