package workflow

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"fusebox/internal/job"
	"fusebox/internal/workflow/def"
)

// keyParts are the parts of a step's cache key: everything that changes
// what a successful step produces. Params are already substituted into
// the fields.
type keyParts struct {
	ImageID     string            `json:"image"`
	Command     []string          `json:"command"`
	Env         map[string]string `json:"env"` // encoded with sorted keys
	Workdir     string            `json:"workdir"`
	Outputs     []string          `json:"outputs"`
	Constraints map[string]string `json:"constraints"`
	Inputs      []keyInput        `json:"inputs"` // sorted by At
}

type keyInput struct {
	At     string `json:"at"`
	From   string `json:"from"`
	Digest string `json:"digest"`
}

func newKeyParts(s def.Step, imageID string, inputs []job.Input) keyParts {
	k := keyParts{ImageID: imageID, Command: s.Command, Env: s.Env, Workdir: s.Workdir, Outputs: s.Outputs, Constraints: s.Constraints}
	for i, in := range inputs {
		k.Inputs = append(k.Inputs, keyInput{At: in.Path, From: s.Inputs[i].From, Digest: in.Digest})
	}
	sort.Slice(k.Inputs, func(i, j int) bool { return k.Inputs[i].At < k.Inputs[j].At })
	return k
}

// Key is the cache key: "sha256:" and the hex of the SHA-256 of the
// parts' canonical JSON (json.Marshal sorts map keys; nil and empty encode
// alike).
func (k keyParts) Key() string {
	norm := k
	if len(norm.Env) == 0 {
		norm.Env = nil
	}
	if len(norm.Constraints) == 0 {
		norm.Constraints = nil
	}
	if len(norm.Command) == 0 {
		norm.Command = nil
	}
	if len(norm.Outputs) == 0 {
		norm.Outputs = nil
	}
	b, err := json.Marshal(norm)
	if err != nil {
		panic(fmt.Sprintf("workflow: cache key: %v", err)) // strings always encode
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Named returns the parts by the names WhyRan uses, each as a digest of
// its value (env values are not stored as they are).
func (k keyParts) Named() map[string]string {
	h := func(v any) string {
		b, _ := json.Marshal(v)
		sum := sha256.Sum256(b)
		return hex.EncodeToString(sum[:12])
	}
	m := map[string]string{
		"image":   k.ImageID,
		"command": h(k.Command),
		"workdir": h(k.Workdir),
		"outputs": h(k.Outputs),
	}
	if len(k.Constraints) > 0 {
		m["constraints"] = h(k.Constraints)
	}
	for name, v := range k.Env {
		m["env "+name] = h(v)
	}
	for _, in := range k.Inputs {
		m[fmt.Sprintf("input %s (from %s)", in.At, in.From)] = in.Digest
	}
	return m
}

// whyRan names the parts that differ between the parts of the latest
// cache entry of the step (prev) and the step's now (cur): "image
// changed", "command changed", "env FOO changed", "input /in (from a)
// changed", ... joined with ", "; "" when none does.
func whyRan(prev, cur map[string]string) string {
	order := func(name string) int {
		switch {
		case name == "image":
			return 0
		case name == "command":
			return 1
		case strings.HasPrefix(name, "env "):
			return 2
		case name == "workdir":
			return 3
		case strings.HasPrefix(name, "input "):
			return 4
		case name == "outputs":
			return 5
		}
		return 6
	}
	var changed []string
	for name, v := range cur {
		if pv, ok := prev[name]; !ok || pv != v {
			changed = append(changed, name)
		}
	}
	for name := range prev {
		if _, ok := cur[name]; !ok {
			changed = append(changed, name)
		}
	}
	slices.SortFunc(changed, func(a, b string) int {
		if oa, ob := order(a), order(b); oa != ob {
			return oa - ob
		}
		return strings.Compare(a, b)
	})
	for i, c := range changed {
		changed[i] = c + " changed"
	}
	return strings.Join(changed, ", ")
}
