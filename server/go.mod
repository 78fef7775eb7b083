module github.com/taskwire/taskwire/server

go 1.26.0
