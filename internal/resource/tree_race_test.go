//go:build race

package resource_test

// treeRace: timings are not measured under the race detector.
const treeRace = true
