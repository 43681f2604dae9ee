//go:build !race

package resource_test

const treeRace = false
