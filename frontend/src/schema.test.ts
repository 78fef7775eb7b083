import { describe, expect, it } from "vitest";
import { boundsText, collect, formSpec, humanize, initialValue, keyParams, parseField, placeDetails } from "./schema";

// The schemas as the worker SDK derives them from Go structs (invopop/jsonschema).
const report = {
  $schema: "https://json-schema.org/draft/2020-12/schema",
  type: "object",
  properties: {
    countries: { type: "integer", minimum: 1, maximum: 50, default: 12, description: "Countries in the report." },
    rowsPerCountry: { type: "integer", minimum: 10, maximum: 100000, default: 2000 },
    title: { type: "string", maxLength: 80, default: "Orders by country" },
  },
  additionalProperties: false,
};

const train = {
  $ref: "#/$defs/TrainParams",
  $defs: {
    TrainParams: {
      type: "object",
      properties: {
        epochs: { type: "integer", minimum: 1, maximum: 500, default: 60 },
        learningRate: { type: "number", minimum: 0.0001, maximum: 1, default: 0.1 },
        optimizer: { type: "string", enum: ["sgd", "momentum", "adam"], default: "sgd" },
        activation: { type: "string", enum: ["relu", "tanh", "sigmoid", "gelu", "silu"] },
        shuffle: { type: "boolean", default: true },
      },
      required: ["epochs"],
      additionalProperties: false,
    },
  },
};

describe("formSpec: schema to fields", () => {
  it("maps integers, numbers and strings with their bounds, defaults and help", () => {
    const spec = formSpec(report);
    expect(spec.closed).toBe(true);
    expect(spec.fields.map((f) => [f.name, f.label, f.control])).toEqual([
      ["countries", "Countries", "integer"],
      ["rowsPerCountry", "Rows per country", "integer"],
      ["title", "Title", "text"],
    ]);
    const [countries, rows, title] = spec.fields;
    expect(countries).toMatchObject({ min: 1, max: 50, step: "1", default: 12, help: "Countries in the report.", required: false });
    expect(rows).toMatchObject({ min: 10, max: 100000 });
    expect(title).toMatchObject({ maxLength: 80, default: "Orders by country" });
    expect(initialValue(countries!)).toBe("12");
    expect(initialValue(title!)).toBe("Orders by country");
    expect(boundsText(rows!)).toBe("10 to 100,000; default 2,000");
    expect(boundsText(title!)).toBe("up to 80 characters; default Orders by country");
  });

  it("follows $ref into $defs; enums become radios (few) or a select (many); booleans checkboxes", () => {
    const spec = formSpec(train);
    const byName = Object.fromEntries(spec.fields.map((f) => [f.name, f]));
    expect(byName["epochs"]).toMatchObject({ control: "integer", required: true, min: 1, max: 500 });
    expect(byName["learningRate"]).toMatchObject({ control: "number", step: "any", min: 0.0001, max: 1, label: "Learning rate" });
    expect(byName["optimizer"]).toMatchObject({ control: "radio", options: ["sgd", "momentum", "adam"] });
    expect(initialValue(byName["optimizer"]!)).toBe("0");
    expect(byName["activation"]).toMatchObject({ control: "select" });
    expect(initialValue(byName["activation"]!)).toBe("");
    expect(byName["shuffle"]).toMatchObject({ control: "boolean" });
    expect(initialValue(byName["shuffle"]!)).toBe(true);
  });

  it("takes the tighter exclusive bounds and nullable types", () => {
    const spec = formSpec({
      type: "object",
      properties: { p: { type: ["number", "null"], exclusiveMinimum: 0, maximum: 1 }, t: { title: "Nice name", type: "string" } },
    });
    expect(spec.fields[0]).toMatchObject({ control: "number", min: 0, exclusiveMin: true, max: 1 });
    expect(parseField(spec.fields[0]!, "0")).toEqual({ ok: false, message: "Must be more than 0; at most 1." });
    expect(spec.fields[1]?.label).toBe("Nice name");
  });

  it("survives schemas that are not objects", () => {
    expect(formSpec(undefined).fields).toEqual([]);
    expect(formSpec({ type: "object" }).fields).toEqual([]);
  });

  it("humanizes names", () => {
    expect(humanize("rowsPerCountry")).toBe("Rows per country");
    expect(humanize("max_tokens")).toBe("Max tokens");
    expect(humanize("outputURL")).toBe("Output URL");
  });
});

describe("parseField and collect: client checks mirror the schema", () => {
  const spec = formSpec({
    type: "object",
    properties: {
      rows: { type: "integer", minimum: 1, maximum: 1000000 },
      rate: { type: "number", minimum: 0.0001, maximum: 1 },
      title: { type: "string", maxLength: 5 },
      even: { type: "integer", multipleOf: 2 },
    },
    required: ["rows"],
  });
  const [rows, rate, title, even] = spec.fields;

  it("reads numbers as people write them and enforces bounds", () => {
    expect(parseField(rows!, "250,000")).toEqual({ ok: true, value: 250000, empty: false });
    expect(parseField(rows!, "1.5k")).toEqual({ ok: true, value: 1500, empty: false });
    expect(parseField(rows!, "0")).toEqual({ ok: false, message: "Must be 1 to 1,000,000." });
    expect(parseField(rows!, "1000001")).toEqual({ ok: false, message: "Must be 1 to 1,000,000." });
    expect(parseField(rows!, "2.5")).toEqual({ ok: false, message: "Enter a whole number." });
    expect(parseField(rows!, "?")).toEqual({ ok: false, message: "Enter a whole number." });
    expect(parseField(rows!, "")).toEqual({ ok: false, message: "Required." });
    expect(parseField(rate!, "0.05")).toEqual({ ok: true, value: 0.05, empty: false });
    expect(parseField(rate!, "2")).toEqual({ ok: false, message: "Must be 0.0001 to 1." });
    expect(parseField(rate!, "")).toEqual({ ok: true, value: undefined, empty: true });
    expect(parseField(even!, "3")).toEqual({ ok: false, message: "Must be a multiple of 2." });
  });

  it("checks string lengths", () => {
    expect(parseField(title!, "abcdef")).toEqual({ ok: false, message: "At most 5 characters (now 6)." });
    expect(parseField(title!, "abc")).toEqual({ ok: true, value: "abc", empty: false });
  });

  it("collects params, leaving empty optional fields to the server's defaults", () => {
    expect(collect(spec, { rows: "10", rate: "", title: "", even: "4" })).toEqual({ params: { rows: 10, even: 4 }, errors: {} });
    expect(collect(spec, { rows: "", rate: "9", title: "", even: "" }).errors).toEqual({
      rows: "Required.",
      rate: "Must be 0.0001 to 1.",
    });
  });

  it("reads enum choices by index and booleans", () => {
    const t = formSpec(train);
    const raw = { epochs: "30", learningRate: "0.1", optimizer: "2", activation: "", shuffle: false };
    expect(collect(t, raw)).toEqual({ params: { epochs: 30, learningRate: 0.1, optimizer: "adam", shuffle: false }, errors: {} });
  });
});

describe("placeDetails: the server's invalid_params at the fields", () => {
  it("puts params.<name> at its field and the rest at the form", () => {
    const spec = formSpec(report);
    const placed = placeDetails(spec, [
      { field: "params.countries", message: "must be <= 50" },
      { field: "params.title", message: "too long" },
      { field: "params.title", message: "bad" },
      { field: "params.colour", message: "not allowed" },
      { field: "params", message: "missing properties: rows" },
    ]);
    expect(placed.fields).toEqual({ countries: "must be <= 50", title: "too long bad" });
    expect(placed.form).toEqual(["colour: not allowed", "missing properties: rows"]);
  });

  it("takes JSON pointer style fields", () => {
    const placed = placeDetails(formSpec(report), [{ field: "/countries", message: "x" }]);
    expect(placed.fields).toEqual({ countries: "x" });
  });
});

describe("keyParams: what tells tasks apart", () => {
  it("lists params by the schema's labels, in its order", () => {
    const spec = formSpec(report);
    expect(keyParams(spec, { title: "Q3", countries: 12, rowsPerCountry: 2000 })).toEqual([
      "countries 12",
      "rows per country 2,000",
      "title “Q3”",
    ]);
    expect(keyParams(undefined, { rows: 1000000 })).toEqual(["rows 1,000,000"]);
    expect(keyParams(spec, undefined)).toEqual([]);
  });
});
