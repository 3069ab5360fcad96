//go:build race

package event_test

// raceOn: the race detector slows SQLite commits about tenfold; the storm
// is smaller then (the race is what that run checks, not the volume).
const raceOn = true
