// The types of api.ts against the server's OpenAPI document: src/generated/openapi.ts
// is generated from it (scripts/gen-openapi.mjs), and the checks below are types, so
// `npm run typecheck` fails when the client's requests are not what the document
// accepts or when the documented answers are not what the client reads. The test at
// the end fails when src/generated/openapi.ts is older than the document.

import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, it } from "vitest";
import type {
  CreatedTask,
  CreateTaskRequest,
  ErrorAnswer,
  ErrorDetail,
  KindListAnswer,
  StreamPage,
  TaskListAnswer,
  ViewerOptions,
  ViewerToken,
} from "./api.js";
import type {
  HistoryEvent,
  InboxAckReply,
  InboxAckRequest,
  InboxEntry,
  TaskErrorInfo,
  TaskKind,
  TaskKindInfo,
  TaskRecord,
  TaskResult,
} from "./generated/contract.js";
import type { components, operations, paths } from "./generated/openapi.js";

type Schemas = components["schemas"];

/** Is<A, B> is true when every A is a B. */
type Is<A, B> = [A] extends [B] ? true : false;
/** Same<A, B> is true when A and B are assignable both ways. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** IsNever<T> is true for never. */
type IsNever<T> = [T] extends [never] ? true : false;
/** expect compiles only when T is true. */
function expect<T extends true>(): T | void {}

/** Op is the operation of method on path. */
type Op<P extends keyof paths, M extends "get" | "post" | "delete"> = paths[P][M];
/** Answer is the JSON body of the answer status of operation O (never when it has none). */
type Answer<O, S> = O extends { responses: infer R }
  ? S extends keyof R
    ? R[S] extends { content: { "application/json": infer B } }
      ? B
      : never
    : never
  : never;
/** Body is the JSON request body of operation O. */
type Body<O> = O extends { requestBody?: { content: { "application/json": infer B } } } ? B : never;

// Requests: what api.ts sends is what the document accepts.
expect<Is<CreateTaskRequest, Body<Op<"/api/v1/tasks", "post">>>>();
expect<Is<ViewerOptions, Body<Op<"/api/v1/tasks/{id}/viewers", "post">>>>();
// ... and names no field the server refuses (its bodies admit no other).
expect<IsNever<Exclude<keyof CreateTaskRequest, keyof Body<Op<"/api/v1/tasks", "post">>>>>();
expect<IsNever<Exclude<keyof ViewerOptions, keyof Body<Op<"/api/v1/tasks/{id}/viewers", "post">>>>>();

/**
 * AsContract is T with every kind typed as contract.ts types it (TaskKind: the kinds
 * its Go source names), where the document has any kind a worker registered (string).
 */
type AsContract<T> = unknown extends T
  ? T
  : T extends string | number | boolean | null | undefined
  ? T
  : T extends readonly (infer E)[]
    ? AsContract<E>[]
    : { [K in keyof T]: K extends "kind" ? TaskKind : AsContract<T[K]> };

// Answers: what the server answers is what api.ts reads.
expect<Is<Answer<Op<"/api/v1/tasks", "post">, 202>, CreatedTask>>();
expect<Is<AsContract<Answer<Op<"/api/v1/tasks", "get">, 200>>, TaskListAnswer>>();
expect<Is<AsContract<Answer<Op<"/api/v1/tasks/{id}", "get">, 200>>, TaskRecord>>();
expect<Is<AsContract<Answer<Op<"/api/v1/tasks/{id}", "delete">, 200 | 202>>, TaskRecord>>();
expect<Is<Answer<Op<"/api/v1/kinds", "get">, 200>, KindListAnswer>>();
expect<Is<Answer<Op<"/api/v1/tasks/{id}/streams/{name}", "get">, 200>, StreamPage>>();
expect<Is<Answer<Op<"/api/v1/tasks/{id}/viewers", "post">, 201>, ViewerToken>>();
expect<Same<Schemas["ErrorDetail"], ErrorDetail>>();

// Every error answer of every operation is what errorOf reads.
type ErrorStatus = 400 | 401 | 403 | 404 | 405 | 408 | 409 | 410 | 413 | 415 | 429 | 500 | 503;
type AnyErrorAnswer = Answer<operations[keyof operations], ErrorStatus>;
expect<IsNever<AnyErrorAnswer> extends true ? false : true>();
expect<Is<AnyErrorAnswer, ErrorAnswer>>();

// The client's own types name no field the server does not send, but the
// top-level totalParam of legacyKinds (servers before GET /api/v1/kinds had settings).
type Kind = NonNullable<KindListAnswer["kinds"]>[number];
expect<IsNever<Exclude<keyof Kind, keyof Schemas["KindEntry"] | "totalParam">>>();
expect<IsNever<Exclude<keyof StreamPage, keyof Schemas["StreamPage"]>>>();
expect<IsNever<Exclude<keyof CreatedTask, keyof Schemas["CreatedTask"]>>>();
expect<IsNever<Exclude<keyof ViewerToken, keyof Schemas["ViewerToken"]>>>();

// The Socket.IO contract (generated/contract.ts, from the same Go types) and the
// document agree on the types both have (kind aside, see AsContract).
expect<Same<AsContract<Schemas["TaskRecord"]>, TaskRecord>>();
expect<Is<TaskRecord["kind"], Schemas["TaskRecord"]["kind"]>>();
expect<Same<Schemas["TaskResult"], TaskResult>>();
expect<Same<Schemas["TaskErrorInfo"], TaskErrorInfo>>();
expect<Same<AsContract<Schemas["InboxEntry"]>, InboxEntry>>();
// contract.ts lets a Go slice be null (a nil slice); the document says the
// server sends an array (the server's contract test holds it to that).
expect<Is<Schemas["InboxAckRequest"], InboxAckRequest>>();
expect<Is<Schemas["InboxAckReply"], InboxAckReply>>();
expect<Same<Schemas["HistoryEvent"], HistoryEvent>>();
expect<Same<Schemas["TaskKindInfo"], TaskKindInfo>>();

describe("OpenAPI types", () => {
  it("src/generated/openapi.ts is what the server's document gives", () => {
    // Fails (exit 1, with the command to run) when the document changed since.
    execFileSync(process.execPath, ["scripts/gen-openapi.mjs", "--check"], {
      cwd: fileURLToPath(new URL("..", import.meta.url)),
      stdio: "inherit",
    });
  }, 120_000); // loading openapi-typescript (and TypeScript) takes seconds on a busy machine
});
