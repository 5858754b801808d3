//go:build race

package agent_test

// ingestPerTopic: under the race detector, which slows the bridge, the publishers and the
// consumer of the test process several times over on a 2-core machine, 100 device topics x 400
// = 40k messages keep TestMQTTIngest100kOrderedPerDevice well under a minute. The normal run
// sends the 100k.
const ingestPerTopic = 400
