package dispatch

// StartRetention starts the retention loop for tests, until Start does it
// itself (then delete this and its call in TestRetention).
func (d *Dispatcher) StartRetention() { d.startRetention() }
