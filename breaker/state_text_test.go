package breaker

import (
	"encoding/json"
	"testing"
)

func TestStateText(t *testing.T) {
	for s := StateClosed; s < numStates; s++ {
		b, err := json.Marshal(s)
		if err != nil || string(b) != `"`+s.String()+`"` {
			t.Errorf("marshal %v: %s %v", s, b, err)
		}
		var back State
		if err := json.Unmarshal(b, &back); err != nil || back != s {
			t.Errorf("unmarshal %s: %v %v", b, back, err)
		}
	}
	if _, err := json.Marshal(numStates); err == nil {
		t.Error("an unknown state was encoded")
	}
	var s State
	if err := json.Unmarshal([]byte(`"ajar"`), &s); err == nil {
		t.Error(`"ajar" was read as a state`)
	}
}
