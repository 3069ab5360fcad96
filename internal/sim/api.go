package sim

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
)

// apiVersion is the Docker API version the simulated engines speak.
const apiVersion = "1.47"

// simContainer is one simulated container.
type simContainer struct {
	id, name, image   string
	labels            map[string]string
	state             container.ContainerState
	exitCode          int
	errMsg            string
	started, finished time.Time
	timer             *time.Timer
	exited            chan struct{} // closed when it stops
}

// serve answers one Docker API request for the engine its connection
// belongs to.
func (c *Cluster) serve(w http.ResponseWriter, r *http.Request) {
	e := r.Context().Value(engineKey{}).(*Engine)
	e.calls.Add(1)
	if !e.hold(r.Context()) {
		return
	}
	p := r.URL.Path
	if rest, ok := strings.CutPrefix(p, "/v"); ok && rest != "" && rest[0] >= '0' && rest[0] <= '9' {
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			p = rest[i:]
		}
	}
	w.Header().Set("API-Version", apiVersion)
	w.Header().Set("OSType", "linux")
	switch {
	case p == "/_ping":
		e.pings.Add(1)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if r.Method != http.MethodHead {
			_, _ = w.Write([]byte("OK"))
		}
	case p == "/version":
		writeJSON(w, http.StatusOK, map[string]string{"Version": "simulated", "ApiVersion": apiVersion, "MinAPIVersion": "1.24", "Os": "linux", "Arch": "amd64"})
	case p == "/events":
		e.serveEvents(w, r)
	case p == "/images/create" && r.Method == http.MethodPost:
		writeJSON(w, http.StatusOK, map[string]string{"status": "pulled (simulated)"})
	case strings.HasPrefix(p, "/images/") && strings.HasSuffix(p, "/json"):
		ref := strings.TrimSuffix(strings.TrimPrefix(p, "/images/"), "/json")
		sum := sha256.Sum256([]byte(ref))
		writeJSON(w, http.StatusOK, image.InspectResponse{ID: "sha256:" + hex.EncodeToString(sum[:]), RepoTags: []string{ref}})
	case p == "/containers/create" && r.Method == http.MethodPost:
		e.create(w, r)
	case p == "/containers/json":
		e.list(w)
	case strings.HasPrefix(p, "/containers/"):
		rest := strings.TrimPrefix(p, "/containers/")
		id, op, _ := strings.Cut(rest, "/")
		e.container(w, r, id, op)
	default:
		writeErr(w, http.StatusNotFound, "page not found (the simulated engine does not serve "+p+")")
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"message": msg})
}

func (e *Engine) create(w http.ResponseWriter, r *http.Request) {
	var req container.CreateRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Config == nil {
		writeErr(w, http.StatusBadRequest, fmt.Sprintf("invalid create body: %v", err))
		return
	}
	if f := e.c.model.CreateFailRate; f > 0 && rand.Float64() < f {
		writeErr(w, http.StatusInternalServerError, "simulated create failure")
		return
	}
	name := r.URL.Query().Get("name")
	e.mu.Lock()
	if _, taken := e.byName[name]; taken && name != "" {
		e.mu.Unlock()
		writeErr(w, http.StatusConflict, fmt.Sprintf("Conflict. The container name %q is already in use", "/"+name))
		return
	}
	e.seq++
	sum := sha256.Sum256([]byte(e.name + "/" + strconv.Itoa(e.seq)))
	ct := &simContainer{id: hex.EncodeToString(sum[:]), name: name, image: req.Image, labels: req.Labels,
		state: container.StateCreated, exited: make(chan struct{})}
	if ct.name == "" {
		ct.name = ct.id[:12]
	}
	e.containers[ct.id] = ct
	e.byName[ct.name] = ct
	e.mu.Unlock()
	e.creates.Add(1)
	writeJSON(w, http.StatusCreated, container.CreateResponse{ID: ct.id, Warnings: []string{}})
}

// lookup finds a container by ID, name or ID prefix; e.mu held.
func (e *Engine) lookup(ref string) *simContainer {
	if ct, ok := e.containers[ref]; ok {
		return ct
	}
	if ct, ok := e.byName[strings.TrimPrefix(ref, "/")]; ok {
		return ct
	}
	return nil
}

func (e *Engine) container(w http.ResponseWriter, r *http.Request, ref, op string) {
	e.mu.Lock()
	ct := e.lookup(ref)
	if ct == nil {
		e.mu.Unlock()
		writeErr(w, http.StatusNotFound, "No such container: "+ref)
		return
	}
	switch {
	case op == "json":
		res := e.inspectLocked(ct)
		e.mu.Unlock()
		e.inspects.Add(1)
		writeJSON(w, http.StatusOK, res)
	case op == "start" && r.Method == http.MethodPost:
		if ct.state != container.StateCreated {
			e.mu.Unlock()
			w.WriteHeader(http.StatusNotModified)
			return
		}
		ct.state, ct.started = container.StateRunning, time.Now()
		ct.timer = time.AfterFunc(e.c.model.JobRuntime, func() {
			e.mu.Lock()
			defer e.mu.Unlock()
			if ct.state == container.StateRunning {
				e.exitLocked(ct, 0, "")
				e.exits.Add(1)
			}
		})
		e.publishLocked(ct, "start")
		e.mu.Unlock()
		e.starts.Add(1)
		w.WriteHeader(http.StatusNoContent)
	case (op == "stop" || op == "kill") && r.Method == http.MethodPost:
		if ct.state != container.StateRunning {
			e.mu.Unlock()
			w.WriteHeader(http.StatusNotModified)
			return
		}
		e.exitLocked(ct, 137, "")
		e.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case op == "wait" && r.Method == http.MethodPost:
		exited := ct.exited
		e.mu.Unlock()
		select {
		case <-exited:
		case <-r.Context().Done():
			return
		}
		e.mu.Lock()
		code := ct.exitCode
		e.mu.Unlock()
		writeJSON(w, http.StatusOK, container.WaitResponse{StatusCode: int64(code)})
	case op == "logs":
		exited := ct.exited
		e.mu.Unlock()
		w.Header().Set("Content-Type", "application/vnd.docker.multiplexed-stream")
		w.WriteHeader(http.StatusOK)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		follow := r.URL.Query().Get("follow")
		if follow == "1" || follow == "true" {
			select {
			case <-exited:
			case <-r.Context().Done():
				return
			}
		}
		select {
		case <-exited:
			line := "simulated job output\n"
			if ts := r.URL.Query().Get("timestamps"); ts == "1" || ts == "true" {
				e.mu.Lock()
				line = ct.finished.UTC().Format("2006-01-02T15:04:05.000000000Z") + " " + line
				e.mu.Unlock()
			}
			_, _ = w.Write(frame(1, line))
		default:
		}
	case op == "" && r.Method == http.MethodDelete:
		if ct.timer != nil {
			ct.timer.Stop()
		}
		if ct.state == container.StateRunning {
			e.exitLocked(ct, 137, "")
		}
		delete(e.containers, ct.id)
		delete(e.byName, ct.name)
		e.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		e.mu.Unlock()
		writeErr(w, http.StatusNotFound, "the simulated engine does not serve "+op+" on containers")
	}
}

// exitLocked stops ct with code and publishes its die event; e.mu held.
func (e *Engine) exitLocked(ct *simContainer, code int, msg string) {
	ct.state, ct.exitCode, ct.errMsg, ct.finished = container.StateExited, code, msg, time.Now()
	close(ct.exited)
	e.publishLocked(ct, "die")
}

func (e *Engine) inspectLocked(ct *simContainer) container.InspectResponse {
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "0001-01-01T00:00:00Z"
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	return container.InspectResponse{
		ID: ct.id, Name: "/" + ct.name, Image: ct.image,
		State: &container.State{Status: ct.state, Running: ct.state == container.StateRunning, ExitCode: ct.exitCode,
			Error: ct.errMsg, StartedAt: ts(ct.started), FinishedAt: ts(ct.finished)},
		Config: &container.Config{Image: ct.image, Labels: ct.labels},
	}
}

func (e *Engine) list(w http.ResponseWriter) {
	e.mu.Lock()
	out := make([]container.Summary, 0, len(e.containers))
	for _, ct := range e.containers {
		out = append(out, container.Summary{ID: ct.id, Names: []string{"/" + ct.name}, Image: ct.image, Labels: ct.labels, State: ct.state})
	}
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// publishLocked sends a container event to every live event stream; a
// stream that lags is skipped (its reader falls back on polls, as with a
// real engine whose stream broke). e.mu held.
func (e *Engine) publishLocked(ct *simContainer, action string) {
	if len(e.subs) == 0 {
		return
	}
	attrs := map[string]string{"name": ct.name, "image": ct.image}
	for k, v := range ct.labels {
		attrs[k] = v
	}
	if action == "die" {
		attrs["exitCode"] = strconv.Itoa(ct.exitCode)
	}
	now := time.Now()
	b, _ := json.Marshal(events.Message{Type: events.ContainerEventType, Action: events.Action(action),
		Actor: events.Actor{ID: ct.id, Attributes: attrs}, Scope: "local", Time: now.Unix(), TimeNano: now.UnixNano()})
	b = append(b, '\n')
	for ch := range e.subs {
		select {
		case ch <- b:
		default:
		}
	}
}

// serveEvents streams container events as they happen. A request for past
// events (until given) gets none: the simulation keeps no event log.
func (e *Engine) serveEvents(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	f, _ := w.(http.Flusher)
	if f != nil {
		f.Flush()
	}
	if r.URL.Query().Get("until") != "" {
		return
	}
	ch := make(chan []byte, 1024)
	e.mu.Lock()
	e.subs[ch] = struct{}{}
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.subs, ch)
		e.mu.Unlock()
	}()
	for {
		select {
		case b := <-ch:
			if _, err := w.Write(b); err != nil {
				return
			}
			if f != nil {
				f.Flush()
			}
		case <-r.Context().Done():
			return
		}
	}
}

// frame is one frame of Docker's multiplexed log stream.
func frame(stream byte, s string) []byte {
	b := make([]byte, 8, 8+len(s))
	b[0] = stream
	binary.BigEndian.PutUint32(b[4:], uint32(len(s)))
	return append(b, s...)
}
