package events

// TaskRoom is the room of the sockets that follow one task.
func TaskRoom(taskID string) string { return "task:" + taskID }

// UserRoom is the room of every socket of one identity (all its tabs).
func UserRoom(identity string) string { return "user:" + identity }

// SocketRoom is a room that holds exactly one socket, and only when that socket
// belongs to identity. Targeting it instead of the bare socket id makes the server
// refuse socket ids of other identities without a lookup.
func SocketRoom(identity, socketID string) string { return "user:" + identity + ":socket:" + socketID }
