//go:build race

package batch

// raceEnabled: the race detector randomly drops sync.Pool items, so pool-based allocation
// counts are not meaningful.
const raceEnabled = true
