package breaker

// The state word packs, in one atomic uint64, everything the hot path needs
// to decide and to record a call without a lock:
//
//	bits  0..2   State
//	bits  3..23  consecutive failures (closed and metrics-only), saturating
//	bits 24..63  generation, incremented on every state change
//
// Because the generation and the failure count share a word, a failure is
// counted with one compare-and-swap that also proves the call belongs to the
// current generation: a call that started before a state change can never
// touch the new state's count.
const (
	stateBits   = 3
	consecBits  = 21
	consecShift = stateBits
	genShift    = stateBits + consecBits

	stateMask  = 1<<stateBits - 1
	consecMask = (1<<consecBits - 1) << consecShift
	maxConsec  = 1<<consecBits - 1
)

func pack(gen uint64, s State) uint64 { return gen<<genShift | uint64(s) }

func stateOf(w uint64) State { return State(w & stateMask) }

func consecOf(w uint64) int { return int(w & consecMask >> consecShift) }

func genOf(w uint64) uint64 { return w >> genShift }

// sameGen reports whether two words belong to the same generation (and so
// the same state), whatever their failure counts.
func sameGen(a, b uint64) bool { return a&^consecMask == b&^consecMask }

func withConsec(w uint64, n int) uint64 {
	return w&^consecMask | uint64(n)<<consecShift
}
