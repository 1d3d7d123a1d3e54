//go:build race

package reliability

// raceEnabled: the race detector's shadow memory makes RSS meaningless as
// a leak signal, so the soak reports it without asserting it.
const raceEnabled = true
