module github.com/taskwire/taskwire/server/examples/backend

go 1.26.0

require github.com/taskwire/taskwire/client v0.0.0

require github.com/golang-jwt/jwt/v5 v5.3.1 // indirect

replace github.com/taskwire/taskwire/client => ../../../client
