// @taskwire/client: follow taskwire tasks from a browser or Node.

export { createClient, TaskError } from "./client.js";
export type { ClientOptions, Inbox, TaskHandle, TaskListener, TaskResult, TaskwireClient } from "./client.js";
export { AuthEvents, isViewerToken, refreshBeforeMs, tokenExpiry, Tokens, viewerTokenType } from "./auth.js";
export type { RefreshAck, TokenSource } from "./auth.js";
export { Api, ApiError, legacyKinds, skewFromDate } from "./api.js";
export type { CreatedTask, CreateTaskRequest, ErrorDetail, KindEntry, KindSettings, StreamPage, ViewerOptions, ViewerToken } from "./api.js";
export { connLabel, connStatus, connTitle, initialConn, reduceConn } from "./connection.js";
export type { ConnEvent, ConnState, ConnStatus } from "./connection.js";
export { InboxList, isInboxEntry } from "./inbox.js";
export { Live } from "./live.js";
export type { Hooks, LiveOptions, TaskApi } from "./live.js";
export { elapsedMs, isFinal, isJsonResult, isPayload, isRecord, remainingSeconds, TaskStore } from "./state.js";
export type { Gap, ResultView, TaskView } from "./state.js";
export { Kept, maxKept, planResume, recordOf } from "./resume.js";
export type { Step } from "./resume.js";
export { chartData, held, maxHeldItems, maxSeries, mergeChunk, mergeFetched, missingFrom, newStream, noteKnown, polyline, shapeOf, tailLines } from "./streams.js";
export type { ChartData, MergeResult, Series, StreamShape, StreamView } from "./streams.js";
export * from "./generated/contract.js";
