module github.com/taskwire/taskwire/worker

go 1.26.0
