// Package testproc holds what the test servers (internal/testminio, internal/testmosquitto) and
// the benchmark programs share about running a real program next to the code under test:
// finding its binary, picking a free port, starting it so that it dies with its parent,
// waiting until it is ready, stopping it, and keeping the tail of what it printed.
//
// It knows nothing about any particular server; each of those packages wraps it.
package testproc
