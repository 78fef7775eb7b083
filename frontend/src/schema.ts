// From a kind's params JSON Schema (draft 2020-12, an object schema) to the fields
// of its start form, and the client-side checks that mirror the schema. Pure: the
// view renders FieldSpecs, and the server's answer stays authoritative (it runs a
// real validator; these checks only save a round trip for the common mistakes).

/** FieldSpec is one input of a start form. */
export interface FieldSpec {
  /** The property name in params. */
  name: string;
  label: string;
  /** The schema's description, shown as help text. */
  help: string | undefined;
  control: "integer" | "number" | "boolean" | "select" | "radio" | "text" | "json";
  required: boolean;
  /** The schema's default, as a JSON value. */
  default: unknown;
  min: number | undefined;
  max: number | undefined;
  /** min/max are exclusive bounds. */
  exclusiveMin: boolean;
  exclusiveMax: boolean;
  /** The input's step ("any" for a number without multipleOf). */
  step: string | undefined;
  multipleOf: number | undefined;
  minLength: number | undefined;
  maxLength: number | undefined;
  pattern: string | undefined;
  /** The choices of an enum (select or radio). */
  options: unknown[];
}

/** FormSpec is the whole start form of a kind. */
export interface FormSpec {
  fields: FieldSpec[];
  /** The schema allows no properties besides the fields. */
  closed: boolean;
}

type Schema = Record<string, unknown>;

function isObj(v: unknown): v is Schema {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

/** Enums of at most this many choices are radio buttons; longer ones a select. */
export const maxRadioOptions = 4;

/**
 * resolve follows local references ("#/$defs/Name", "#/definitions/Name", "#") and
 * merges a single-entry allOf, as schema generators write them.
 */
function resolve(s: unknown, root: Schema, depth = 0): Schema {
  if (!isObj(s) || depth > 8) return isObj(s) ? s : {};
  let out: Schema = s;
  const ref = s["$ref"];
  if (typeof ref === "string" && ref.startsWith("#")) {
    let target: unknown = root;
    for (const part of ref.slice(1).split("/").filter(Boolean)) {
      const key = decodeURIComponent(part).replace(/~1/g, "/").replace(/~0/g, "~");
      target = isObj(target) ? target[key] : undefined;
    }
    const { $ref: _ignored, ...rest } = s;
    out = { ...resolve(target, root, depth + 1), ...rest };
  }
  const all = out["allOf"];
  if (Array.isArray(all) && all.length === 1) {
    const { allOf: _a, ...rest } = out;
    out = { ...resolve(all[0], root, depth + 1), ...rest };
  }
  return out;
}

/** typeOf returns the schema's type, ignoring "null" in a type list. */
function typeOf(s: Schema): string | undefined {
  const t = s["type"];
  if (typeof t === "string") return t;
  if (Array.isArray(t)) return t.find((x): x is string => typeof x === "string" && x !== "null");
  return undefined;
}

/** humanize turns a property name into a label: "rowsPerCountry" -> "Rows per country". */
export function humanize(name: string): string {
  const words = name
    .replace(/[_\-.]+/g, " ")
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1 $2")
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map((w, i) => (i > 0 && !/^[A-Z0-9]{2,}$/.test(w) ? w.toLowerCase() : w));
  const s = words.join(" ");
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function fieldOf(name: string, raw: unknown, root: Schema, required: boolean): FieldSpec {
  const s = resolve(raw, root);
  const type = typeOf(s);
  const f: FieldSpec = {
    name,
    label: typeof s["title"] === "string" && s["title"] !== "" ? s["title"] : humanize(name),
    help: typeof s["description"] === "string" && s["description"] !== "" ? s["description"] : undefined,
    control: "json",
    required,
    default: s["default"],
    min: undefined,
    max: undefined,
    exclusiveMin: false,
    exclusiveMax: false,
    step: undefined,
    multipleOf: num(s["multipleOf"]),
    minLength: num(s["minLength"]),
    maxLength: num(s["maxLength"]),
    pattern: typeof s["pattern"] === "string" ? s["pattern"] : undefined,
    options: [],
  };
  // Bounds: the tighter of the inclusive and exclusive forms.
  const min = num(s["minimum"]);
  const xmin = num(s["exclusiveMinimum"]);
  if (xmin !== undefined && (min === undefined || xmin >= min)) {
    f.min = xmin;
    f.exclusiveMin = true;
  } else f.min = min;
  const max = num(s["maximum"]);
  const xmax = num(s["exclusiveMaximum"]);
  if (xmax !== undefined && (max === undefined || xmax <= max)) {
    f.max = xmax;
    f.exclusiveMax = true;
  } else f.max = max;

  const enumValues = Array.isArray(s["enum"]) ? s["enum"] : "const" in s ? [s["const"]] : undefined;
  if (enumValues && enumValues.length > 0) {
    f.options = enumValues;
    f.control = enumValues.length <= maxRadioOptions ? "radio" : "select";
    return f;
  }
  switch (type) {
    case "integer":
      f.control = "integer";
      f.step = String(f.multipleOf !== undefined && Number.isInteger(f.multipleOf) ? f.multipleOf : 1);
      break;
    case "number":
      f.control = "number";
      f.step = f.multipleOf !== undefined ? String(f.multipleOf) : "any";
      break;
    case "boolean":
      f.control = "boolean";
      break;
    case "string":
      f.control = "text";
      break;
    default:
      f.control = "json";
  }
  return f;
}

/** formSpec maps a params schema to the fields of a start form, in schema order. */
export function formSpec(schema: unknown): FormSpec {
  const root = isObj(schema) ? schema : {};
  const s = resolve(root, root);
  const props = isObj(s["properties"]) ? s["properties"] : {};
  const required = new Set(Array.isArray(s["required"]) ? s["required"].filter((x) => typeof x === "string") : []);
  const fields = Object.entries(props).map(([name, p]) => fieldOf(name, p, root, required.has(name)));
  return { fields, closed: s["additionalProperties"] === false };
}

/** formatNumber writes a bound or default for people (1,000,000; 0.0001). */
export function formatNumber(n: number, locale = "en-US"): string {
  return new Intl.NumberFormat(locale, { maximumFractionDigits: 10 }).format(n);
}

/** optionLabel is how an enum choice reads. */
export function optionLabel(v: unknown): string {
  if (typeof v === "string") return v === "" ? "(none)" : v;
  return JSON.stringify(v);
}

/** initialValue is what the input holds before the user types: the default, as text. */
export function initialValue(f: FieldSpec): string | boolean {
  const d = f.default;
  if (f.control === "boolean") return d === true;
  if (d === undefined) return f.control === "radio" || f.control === "select" ? (f.required ? "0" : "") : "";
  if (f.control === "radio" || f.control === "select") {
    const i = f.options.findIndex((o) => JSON.stringify(o) === JSON.stringify(d));
    return i >= 0 ? String(i) : "";
  }
  if (f.control === "json") return JSON.stringify(d);
  return typeof d === "string" ? d : String(d);
}

/** hintText is the help line under a field: description, then bounds and default. */
export function boundsText(f: FieldSpec): string {
  const parts: string[] = [];
  if (f.control === "integer" || f.control === "number") {
    const lo = f.min !== undefined ? formatNumber(f.min) : undefined;
    const hi = f.max !== undefined ? formatNumber(f.max) : undefined;
    if (lo !== undefined && hi !== undefined && !f.exclusiveMin && !f.exclusiveMax) parts.push(`${lo} to ${hi}`);
    else {
      if (lo !== undefined) parts.push(f.exclusiveMin ? `more than ${lo}` : `at least ${lo}`);
      if (hi !== undefined) parts.push(f.exclusiveMax ? `less than ${hi}` : `at most ${hi}`);
    }
  } else if (f.control === "text") {
    if (f.maxLength !== undefined) parts.push(`up to ${formatNumber(f.maxLength)} characters`);
  }
  if (f.default !== undefined && f.control !== "boolean" && f.control !== "radio") {
    parts.push(`default ${typeof f.default === "number" ? formatNumber(f.default) : optionLabel(f.default)}`);
  }
  return parts.join("; ");
}

/** FieldResult is one parsed input: a value to send, nothing (left empty), or why not. */
export type FieldResult = { ok: true; value: unknown; empty: boolean } | { ok: false; message: string };

function parseNumber(text: string): number | undefined {
  // People write 250,000 or 250 000 or 250k; the schema wants a JSON number.
  const s = text.trim().toLowerCase().replace(/[\s,_']/g, "");
  const m = /^([-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)([km]?)$/.exec(s);
  if (!m) return undefined;
  const mult = m[2] === "k" ? 1e3 : m[2] === "m" ? 1e6 : 1;
  const v = Number(m[1]) * mult;
  if (!Number.isFinite(v)) return undefined;
  // 1.5k: avoid 1500.0000000000002.
  return mult === 1 ? v : Math.round(v * 1e6) / 1e6;
}

/**
 * parseField reads one input as the schema wants it. raw is the input's text (the
 * index of the chosen option for select and radio), or a checkbox's state.
 */
export function parseField(f: FieldSpec, raw: string | boolean): FieldResult {
  if (f.control === "boolean") return { ok: true, value: raw === true, empty: false };
  const text = typeof raw === "string" ? raw : "";
  if (text.trim() === "" && f.control !== "text") {
    return f.required ? { ok: false, message: "Required." } : { ok: true, value: undefined, empty: true };
  }
  switch (f.control) {
    case "radio":
    case "select": {
      const i = Number(text);
      if (!Number.isInteger(i) || i < 0 || i >= f.options.length) return { ok: false, message: "Pick one of the choices." };
      return { ok: true, value: f.options[i], empty: false };
    }
    case "integer":
    case "number": {
      const v = parseNumber(text);
      if (v === undefined) return { ok: false, message: f.control === "integer" ? "Enter a whole number." : "Enter a number." };
      if (f.control === "integer" && !Number.isInteger(v)) return { ok: false, message: "Enter a whole number." };
      const range = boundsText({ ...f, default: undefined });
      if (f.min !== undefined && (f.exclusiveMin ? v <= f.min : v < f.min)) return { ok: false, message: `Must be ${range}.` };
      if (f.max !== undefined && (f.exclusiveMax ? v >= f.max : v > f.max)) return { ok: false, message: `Must be ${range}.` };
      if (f.multipleOf !== undefined && f.multipleOf > 0) {
        const q = v / f.multipleOf;
        if (Math.abs(q - Math.round(q)) > 1e-9) return { ok: false, message: `Must be a multiple of ${formatNumber(f.multipleOf)}.` };
      }
      return { ok: true, value: v, empty: false };
    }
    case "text": {
      if (text === "") {
        if (f.required && (f.minLength ?? 0) > 0) return { ok: false, message: "Required." };
        if (!f.required) return { ok: true, value: undefined, empty: true };
      }
      const len = [...text].length;
      if (f.maxLength !== undefined && len > f.maxLength) return { ok: false, message: `At most ${formatNumber(f.maxLength)} characters (now ${formatNumber(len)}).` };
      if (f.minLength !== undefined && len < f.minLength) return { ok: false, message: `At least ${formatNumber(f.minLength)} characters.` };
      if (f.pattern !== undefined) {
        let re: RegExp | undefined;
        try {
          re = new RegExp(f.pattern, "u");
        } catch {
          re = undefined; // a pattern JavaScript cannot read: the server decides
        }
        if (re && !re.test(text)) return { ok: false, message: "Not in the expected format." };
      }
      return { ok: true, value: text, empty: false };
    }
    case "json": {
      try {
        return { ok: true, value: JSON.parse(text), empty: false };
      } catch {
        return { ok: false, message: "Enter a JSON value." };
      }
    }
    default:
      return { ok: false, message: "Unsupported field." };
  }
}

/** Collected is the outcome of reading a whole form. */
export interface Collected {
  params: Record<string, unknown>;
  /** Problems by field name; empty when params can be sent. */
  errors: Record<string, string>;
}

/** collect parses every field; empty optional fields are left out (the server fills defaults). */
export function collect(spec: FormSpec, raw: Record<string, string | boolean>): Collected {
  const params: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  for (const f of spec.fields) {
    const r = parseField(f, raw[f.name] ?? (f.control === "boolean" ? false : ""));
    if (!r.ok) errors[f.name] = r.message;
    else if (!r.empty) params[f.name] = r.value;
  }
  return { params, errors };
}

/** ServerDetail is one entry of an invalid_params answer. */
export interface ServerDetail {
  field: string;
  message: string;
}

/**
 * placeDetails sorts the server's invalid_params details onto the form's fields
 * ("params.rows" -> rows; "params" or an unknown field -> the form itself).
 */
export function placeDetails(spec: FormSpec, details: ServerDetail[]): { fields: Record<string, string>; form: string[] } {
  const names = new Set(spec.fields.map((f) => f.name));
  const fields: Record<string, string> = {};
  const form: string[] = [];
  for (const d of details) {
    const path = d.field.replace(/^params(?:[./]|$)/, "").replace(/^\//, "");
    const top = path.split(/[./[]/)[0] ?? "";
    const msg = d.message.trim();
    if (top !== "" && names.has(top)) fields[top] = fields[top] ? `${fields[top]} ${msg}` : msg;
    else form.push(path !== "" ? `${path}: ${msg}` : msg);
  }
  return { fields, form };
}

/** keyParams picks what tells one task of a kind from another: its params, formatted. */
export function keyParams(spec: FormSpec | undefined, params: unknown, max = 3): string[] {
  if (!isObj(params)) return [];
  const labels = new Map((spec?.fields ?? []).map((f) => [f.name, f.label]));
  const order = spec ? spec.fields.map((f) => f.name).filter((n) => n in params) : Object.keys(params);
  for (const k of Object.keys(params)) if (!order.includes(k)) order.push(k);
  const out: string[] = [];
  for (const k of order) {
    if (out.length >= max) break;
    const v = params[k];
    if (v === undefined || v === null) continue;
    const label = (labels.get(k) ?? humanize(k)).toLowerCase();
    let text: string;
    if (typeof v === "number") text = formatNumber(v);
    else if (typeof v === "string") text = v.length > 40 ? `“${v.slice(0, 39)}…”` : `“${v}”`;
    else if (typeof v === "boolean") text = v ? "yes" : "no";
    else {
      const j = JSON.stringify(v);
      text = j.length > 40 ? j.slice(0, 39) + "…" : j;
    }
    out.push(`${label} ${text}`);
  }
  return out;
}
