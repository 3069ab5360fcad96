//go:build !race

package event_test

const raceOn = false
