// Package deploy holds no code: the module carries taskwire's deployment files
// (docker/, compose.yaml, k8s/) and the tests that check them against the
// binaries. The tests render every kustomization with the kustomize library,
// decode each object strictly into the Kubernetes API types, and compare ports,
// probe paths and environment variable names with what taskwire-server and
// taskwire-worker read in their sources.
package deploy
