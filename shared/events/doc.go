// Package events is the Socket.IO contract between taskwire and the browser: the names
// of the events, their payloads and the rooms they are sent to.
//
// Every payload is one JSON object with camelCase fields that carries the task id
// (taskId) and a per-task sequence number (seq) that increases with every event of
// the task. A client that holds a snapshot with sequence n drops every event whose
// seq is not greater than n.
package events
