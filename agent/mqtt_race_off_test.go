//go:build !race

package agent_test

// ingestPerTopic: 100 device topics x 1000 = the 100k QoS 1 messages.
const ingestPerTopic = 1000
