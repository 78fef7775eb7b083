// The types of api.ts against the server's OpenAPI document, as the client's
// api.ts is checked (packages/client/src/openapi.test.ts): the checks are types,
// so `npm run typecheck` fails when what the operator routes answer is not what
// the dashboard reads.

import { describe, expect as expectValue, it } from "vitest";

import type { paths } from "../../packages/client/src/generated/openapi.js";
import { tasksQuery, type AdminTask, type FailureGroup, type Filters, type KindQueue, type Overview, type ServerInfo, type TaskPage, type WorkerInfo } from "./api";

/** Is<A, B> is true when every A is a B. */
type Is<A, B> = [A] extends [B] ? true : false;
/** IsNever<T> is true for never. */
type IsNever<T> = [T] extends [never] ? true : false;
/** expect compiles only when T is true. */
function expect<T extends true>(): T | void {}

/** Answer is the JSON body of the answer status of method on path. */
type Answer<P extends keyof paths, M extends "get" | "post", S> = paths[P][M] extends { responses: infer R }
  ? S extends keyof R
    ? R[S] extends { content: { "application/json": infer B } }
      ? B
      : never
    : never
  : never;
/** Query is the query of method on path. */
type Query<P extends keyof paths> = paths[P]["get"] extends { parameters: { query?: infer Q } } ? NonNullable<Q> : never;

// What the server answers is what api.ts reads.
expect<Is<Answer<"/api/v1/admin/queue", "get", 200>, Overview>>();
expect<Is<Answer<"/api/v1/admin/workers", "get", 200>, { workers: WorkerInfo[] }>>();
expect<Is<Answer<"/api/v1/admin/servers", "get", 200>, { servers: ServerInfo[]; self: string }>>();
expect<Is<Answer<"/api/v1/admin/tasks", "get", 200>, TaskPage>>();
expect<Is<Answer<"/api/v1/admin/tasks/{id}", "get", 200>, AdminTask>>();
expect<Is<Answer<"/api/v1/admin/failures", "get", 200>, { groups: FailureGroup[]; scanned: number; more: boolean }>>();
expect<Is<Answer<"/api/v1/admin/tasks/{id}/cancel", "post", 200 | 202>, AdminTask>>();
expect<Is<Answer<"/api/v1/admin/tasks/{id}/retry", "post", 200>, AdminTask>>();
expect<Is<Answer<"/api/v1/admin/purge", "post", 200>, { removed: number; scanned: number; more: boolean }>>();

// api.ts names no field the server does not send (AdminTask reads any field of the record).
expect<IsNever<Exclude<keyof KindQueue, keyof NonNullable<Answer<"/api/v1/admin/queue", "get", 200>>["totals"]>>>();
type Worker = Answer<"/api/v1/admin/workers", "get", 200>["workers"][number];
// gone is what the operator socket sends of a worker that stopped.
expect<IsNever<Exclude<keyof WorkerInfo, keyof Worker | "gone">>>();
type Server = Answer<"/api/v1/admin/servers", "get", 200>["servers"][number];
expect<IsNever<Exclude<keyof ServerInfo, keyof Server>>>();
type Group = Answer<"/api/v1/admin/failures", "get", 200>["groups"][number];
expect<IsNever<Exclude<keyof FailureGroup, keyof Group>>>();

// The filters and paging tasksQuery sends are parameters of GET /api/v1/admin/tasks.
expect<IsNever<Exclude<keyof Filters | "limit" | "cursor", keyof Query<"/api/v1/admin/tasks">>>>();

describe("operator API types", () => {
  it("are checked by the type checker (npm run typecheck)", () => {
    expectValue(tasksQuery({ state: "failed" }, 10)).toBe("state=failed&limit=10");
  });
});
