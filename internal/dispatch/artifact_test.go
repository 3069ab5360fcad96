package dispatch_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fusebox/internal/dispatch"
	"fusebox/internal/enginetest"
	"fusebox/internal/job"
	"fusebox/internal/workflow/artifact"
)

// A job's declared output is collected from its container on one host and
// unpacked into the next job's container on another host before it starts;
// a declared output the job does not leave fails it, its own fault.
func TestArtifactsPassBetweenJobsOnDifferentHosts(t *testing.T) {
	engines := enginetest.Shared(t, 2)
	arts, err := artifact.Open(filepath.Join(t.TempDir(), "artifacts"), artifact.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, engines, rigOptions{dispatch: dispatch.Config{Artifacts: arts}})
	e1, e2 := engines.Engines[0].Name, engines.Engines[1].Name

	w := r.spec("write", "/out/a.txt", "from the first job", "write", "/out/sub/b.txt", "nested")
	w.Outputs, w.Constraints = []string{"/out"}, map[string]string{"engine": e1}
	first := r.wait(r.submit(w).ID, 60*time.Second)
	if first.State != job.StateSucceeded || len(first.Outputs) != 1 || first.Outputs[0].Path != "/out" || !job.ValidDigest(first.Outputs[0].Digest) {
		t.Fatalf("first job: %+v", first)
	}
	if !arts.Has(first.Outputs[0].Digest) {
		t.Fatalf("output %s is not in the store", first.Outputs[0].Digest)
	}

	cat := job.Spec{Image: r.img.Ref, Command: []string{"cat", "/in/a.txt", "/in/sub/b.txt"},
		Inputs: []job.Input{{Digest: first.Outputs[0].Digest, Path: "/in"}}, Constraints: map[string]string{"engine": e2}}
	second := r.wait(r.submit(cat).ID, 60*time.Second)
	if second.State != job.StateSucceeded || second.Host != e2 {
		t.Fatalf("second job: %+v", second)
	}
	logs, err := r.d.Logs(t.Context(), second.ID)
	if err != nil || string(logs.Stdout) != "from the first jobnested" {
		t.Fatalf("second job read %q (%v)", logs.Stdout, err)
	}

	missing := r.spec("print", "no output")
	missing.Outputs = []string{"/nowhere"}
	j := r.wait(r.submit(missing).ID, 60*time.Second)
	if j.State != job.StateFailed || j.Cause != job.CauseOutput || !j.Cause.Own() || !strings.Contains(j.Reason, "/nowhere") {
		t.Fatalf("job without its declared output: %+v", j)
	}

	unknown := r.spec("print", "x")
	unknown.Inputs = []job.Input{{Digest: "sha256:" + strings.Repeat("0", 64), Path: "/in"}}
	j = r.wait(r.submit(unknown).ID, 60*time.Second)
	if j.State != job.StateFailed || j.Cause != job.CauseArtifact || j.Cause.Own() {
		t.Fatalf("job with an unknown input: %+v", j)
	}
}
