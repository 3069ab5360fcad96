package breaker

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Registry holds named breakers — one per Docker host, workflow or MCP tool
// — and creates each on first use. It is safe for concurrent use; create one
// with NewRegistry.
//
// Looking up an existing name takes no lock and allocates nothing: the
// breakers live in an immutable map behind an atomic pointer, and creating
// or removing a breaker installs a new copy (under a mutex). That makes
// creation O(n), which suits registries of up to a few thousand names that
// are read far more often than they change.
type Registry struct {
	defaults  Settings
	mu        sync.Mutex // serialises creation and removal
	byName    atomic.Pointer[map[string]*Breaker]
	listeners atomic.Pointer[[]func(name string, from, to State)]
}

// NewRegistry returns an empty registry whose breakers are created with
// defaults unless GetWith says otherwise. It returns a *SettingsError if a
// field of defaults is invalid.
func NewRegistry(defaults Settings) (*Registry, error) {
	if err := defaults.WithDefaults().validate(); err != nil {
		return nil, err
	}
	r := &Registry{defaults: defaults}
	r.byName.Store(&map[string]*Breaker{})
	return r, nil
}

// Get returns the breaker named name, creating it with the registry's
// default settings if there is none.
func (r *Registry) Get(name string) *Breaker {
	if b, ok := (*r.byName.Load())[name]; ok {
		return b
	}
	b, err := r.create(name, r.defaults)
	if err != nil {
		panic(err) // unreachable: NewRegistry validated the defaults
	}
	return b
}

// GetWith returns the breaker named name, creating it with s if there is
// none. An existing breaker is returned as it is: s applies only to
// creation. It returns a *SettingsError if s is invalid and the breaker had
// to be created.
func (r *Registry) GetWith(name string, s Settings) (*Breaker, error) {
	if b, ok := (*r.byName.Load())[name]; ok {
		return b, nil
	}
	return r.create(name, s)
}

// Lookup returns the breaker named name, if there is one, without creating
// it.
func (r *Registry) Lookup(name string) (*Breaker, bool) {
	b, ok := (*r.byName.Load())[name]
	return b, ok
}

func (r *Registry) create(name string, s Settings) (*Breaker, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.byName.Load()
	if b, ok := old[name]; ok {
		return b, nil // created by another goroutine meanwhile
	}
	b, err := newBreaker(name, s, r)
	if err != nil {
		return nil, err
	}
	m := make(map[string]*Breaker, len(old)+1)
	maps.Copy(m, old)
	m[name] = b
	r.byName.Store(&m)
	return b, nil
}

// Remove drops the breaker named name from the registry and reports whether
// there was one. Holders of the breaker can go on using it; the next Get
// creates a new one.
func (r *Registry) Remove(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.byName.Load()
	if _, ok := old[name]; !ok {
		return false
	}
	m := maps.Clone(old)
	delete(m, name)
	r.byName.Store(&m)
	return true
}

// List returns the registry's breakers sorted by name.
func (r *Registry) List() []*Breaker {
	m := *r.byName.Load()
	bs := slices.Collect(maps.Values(m))
	slices.SortFunc(bs, func(a, b *Breaker) int { return strings.Compare(a.name, b.name) })
	return bs
}

// Snapshots returns a snapshot of every breaker, sorted by name.
func (r *Registry) Snapshots() []Snapshot {
	bs := r.List()
	ss := make([]Snapshot, len(bs))
	for i, b := range bs {
		ss[i] = b.Snapshot()
	}
	return ss
}

// ResetAll resets every breaker in the registry (see Breaker.Reset).
func (r *Registry) ResetAll() {
	for _, b := range r.List() {
		b.Reset()
	}
}

// OnStateChange adds a listener that is told of every state change of every
// breaker in the registry, present and future, after the breaker's own
// Settings.OnStateChange. The rules of Settings.OnStateChange apply: called
// outside any lock, in order per breaker, and it may call back into the
// breaker or the registry.
func (r *Registry) OnStateChange(fn func(name string, from, to State)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ls []func(string, State, State)
	if p := r.listeners.Load(); p != nil {
		ls = slices.Clone(*p)
	}
	ls = append(ls, fn)
	r.listeners.Store(&ls)
}

func (r *Registry) notify(name string, from, to State) {
	if p := r.listeners.Load(); p != nil {
		for _, fn := range *p {
			fn(name, from, to)
		}
	}
}
