package enginetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// newClient is a moby client on host with a fixed API version, so that
// every call is one request (no negotiation ping first).
func newClient(t *testing.T, host string) *client.Client {
	t.Helper()
	cli, err := client.New(client.WithHost(host), client.WithAPIVersion("1.41"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// createJob creates a container of the test image running fusebox-testjob
// with args, named name (if not ""), and removes it when the test ends.
func createJob(ctx context.Context, t *testing.T, cli *client.Client, name string, args ...string) (string, error) {
	t.Helper()
	res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:       name,
		Config:     &container.Config{Image: TestImage(t).Ref, Cmd: append([]string{TestjobPath}, args...), Labels: map[string]string{"fusebox.enginetest": "1"}},
		HostConfig: &container.HostConfig{NetworkMode: "none"},
	})
	if err != nil {
		return "", err
	}
	t.Cleanup(func() {
		_, _ = cli.ContainerRemove(context.Background(), res.ID, client.ContainerRemoveOptions{Force: true})
	})
	return res.ID, nil
}

// uniqueName is a container name no other test uses.
func uniqueName(t *testing.T) string {
	return fmt.Sprintf("answer-%s-%d", strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()), time.Now().UnixNano())
}

func TestAnswerProxy(t *testing.T) {
	f := ForTest(t, 1)
	RequireFaults(t, f)
	e := f.Engines[0]
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	direct := newClient(t, e.UnixHost())
	proxied := newClient(t, e.AnswerProxyHost())
	proxiedTCP := newClient(t, e.AnswerProxyTCPHost())
	createRoute := Route{Method: "POST", Path: `^/containers/create$`}
	startRoute := Route{Method: "POST", Path: `^/containers/[^/]+/start$`}
	inspectRoute := Route{Method: "GET", Path: `^/containers/[^/]+/json$`}

	t.Run("PassThrough", func(t *testing.T) {
		for _, cli := range []*client.Client{proxied, proxiedTCP} {
			if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
				t.Fatalf("ping through %s: %v", cli.DaemonHost(), err)
			}
		}
		// The events stream delivers an event while it is open.
		ectx, ecancel := context.WithCancel(ctx)
		defer ecancel()
		name := uniqueName(t)
		events := proxied.Events(ectx, client.EventsListOptions{Filters: client.Filters{}.Add("type", "container").Add("container", name)})
		id, err := createJob(ctx, t, proxied, name, "print", "hello", "hang")
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		select {
		case m := <-events.Messages:
			if m.Action != "create" || m.Actor.ID != id {
				t.Errorf("first event: %s of %s, want create of %s", m.Action, m.Actor.ID, id)
			}
		case err := <-events.Err:
			t.Fatalf("events: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatal("no create event through the proxy within 30s")
		}

		wait := proxied.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
		if _, err := proxied.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
			t.Fatalf("start: %v", err)
		}
		ins, err := proxied.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil || !ins.Container.State.Running {
			t.Fatalf("inspect: running=%v, %v", err == nil && ins.Container.State.Running, err)
		}

		// Logs with follow stream while the container runs (it never
		// ends on its own): a buffering proxy would deliver nothing.
		logs, err := proxied.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, Follow: true})
		if err != nil {
			t.Fatalf("logs: %v", err)
		}
		defer logs.Close()
		got := make(chan error, 1)
		go func() {
			var seen []byte
			buf := make([]byte, 512)
			for !bytes.Contains(seen, []byte("hello\n")) {
				n, err := logs.Read(buf)
				seen = append(seen, buf[:n]...)
				if err != nil {
					got <- fmt.Errorf("read %q, then %w", seen, err)
					return
				}
			}
			got <- nil
		}()
		select {
		case err := <-got:
			if err != nil {
				t.Fatalf("follow logs: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("follow logs: no output through the proxy within 30s")
		}

		// Container wait answers when the container exits.
		if _, err := direct.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
			t.Fatal(err)
		}
		select {
		case res := <-wait.Result:
			if res.StatusCode != 137 {
				t.Errorf("wait: exit %d, want 137", res.StatusCode)
			}
		case err := <-wait.Error:
			t.Fatalf("wait: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatal("wait: no answer through the proxy within 30s of the kill")
		}
	})

	t.Run("Attach", func(t *testing.T) {
		res, err := proxied.ContainerCreate(ctx, client.ContainerCreateOptions{
			Config: &container.Config{
				Image: TestImage(t).Ref, Cmd: []string{"sh", "-c", "read x; echo got $x"},
				OpenStdin: true, StdinOnce: true, AttachStdin: true, AttachStdout: true, Tty: true,
			},
			HostConfig: &container.HostConfig{NetworkMode: "none"},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer direct.ContainerRemove(context.Background(), res.ID, client.ContainerRemoveOptions{Force: true})
		att, err := proxied.ContainerAttach(ctx, res.ID, client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true})
		if err != nil {
			t.Fatalf("attach: %v", err)
		}
		defer att.Close()
		if _, err := proxied.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := att.Conn.Write([]byte("hi\n")); err != nil {
			t.Fatal(err)
		}
		_ = att.Conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		out, err := io.ReadAll(att.Reader)
		if !strings.Contains(string(out), "got hi") {
			t.Fatalf("attach read %q (%v), want \"got hi\"", out, err)
		}
	})

	t.Run("DropCreate", func(t *testing.T) {
		fault, err := e.DropAnswers(createRoute, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer fault.Clear()
		name := uniqueName(t)
		_, err = createJob(ctx, t, proxied, name, "exit", "0")
		if err == nil {
			t.Fatal("create with its answer dropped succeeded")
		}
		if !errors.Is(err, io.EOF) || !client.IsErrConnectionFailed(err) {
			t.Errorf("create with its answer dropped: %v, want a connection failure wrapping io.EOF", err)
		}
		t.Logf("drop: %v", err)
		if fault.Hits() != 1 {
			t.Errorf("Hits() = %d, want 1", fault.Hits())
		}
		ins, err := direct.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatalf("the daemon did not create the container: %v", err)
		}
		_, _ = direct.ContainerRemove(ctx, ins.Container.ID, client.ContainerRemoveOptions{Force: true})
		// The budget is spent: the next create passes.
		if _, err := createJob(ctx, t, proxied, "", "exit", "0"); err != nil {
			t.Errorf("create after the budget was spent: %v", err)
		}
		if fault.Hits() != 1 {
			t.Errorf("Hits() = %d after the budget was spent, want 1", fault.Hits())
		}
	})

	t.Run("HoldStart", func(t *testing.T) {
		id, err := createJob(ctx, t, direct, "", "hang")
		if err != nil {
			t.Fatal(err)
		}
		fault, err := e.HoldAnswers(startRoute, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer fault.Clear()
		sctx, scancel := context.WithTimeout(ctx, 3*time.Second)
		defer scancel()
		_, err = proxied.ContainerStart(sctx, id, client.ContainerStartOptions{})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("start with its answer held: %v, want context.DeadlineExceeded", err)
		}
		// A hit means the daemon has answered: the container runs.
		if err := fault.Wait(ctx, 1); err != nil {
			t.Fatal(err)
		}
		ins, err := direct.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil || !ins.Container.State.Running {
			t.Fatalf("container after a held start: running=%v, %v; want running", err == nil && ins.Container.State.Running, err)
		}
	})

	t.Run("HoldReleasedByClear", func(t *testing.T) {
		id, err := createJob(ctx, t, direct, "", "exit", "0")
		if err != nil {
			t.Fatal(err)
		}
		fault, err := e.HoldAnswers(inspectRoute, 0)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := proxied.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
			done <- err
		}()
		if err := fault.Wait(ctx, 1); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			t.Fatalf("inspect returned while held: %v", err)
		default:
		}
		if err := e.ClearAnswerFaults(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Errorf("inspect after the hold was cleared: %v", err)
		}
		if err := fault.Wait(ctx, 2); err == nil {
			t.Error("Wait for more hits on a cleared fault returned nil")
		}
	})

	t.Run("ResetCreateTCP", func(t *testing.T) {
		fault, err := e.ResetAnswers(createRoute, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer fault.Clear()
		name := uniqueName(t)
		_, err = createJob(ctx, t, proxiedTCP, name, "exit", "0")
		if !errors.Is(err, syscall.ECONNRESET) || !client.IsErrConnectionFailed(err) {
			t.Fatalf("create with its answer reset: %v, want a connection failure wrapping ECONNRESET", err)
		}
		t.Logf("reset: %v", err)
		if _, err := direct.ContainerInspect(ctx, name, client.ContainerInspectOptions{}); err != nil {
			t.Errorf("the daemon did not create the container: %v", err)
		}
		_, _ = direct.ContainerRemove(ctx, name, client.ContainerRemoveOptions{Force: true})
	})

	t.Run("DelayInspect", func(t *testing.T) {
		id, err := createJob(ctx, t, direct, "", "exit", "0")
		if err != nil {
			t.Fatal(err)
		}
		const delay = 300 * time.Millisecond
		fault, err := e.DelayAnswers(inspectRoute, 1, delay)
		if err != nil {
			t.Fatal(err)
		}
		defer fault.Clear()
		began := time.Now()
		if _, err := proxied.ContainerInspect(ctx, id, client.ContainerInspectOptions{}); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(began); took < delay {
			t.Errorf("inspect with a %v delay took %v", delay, took)
		}
		if fault.Hits() != 1 {
			t.Errorf("Hits() = %d, want 1", fault.Hits())
		}
	})

	t.Run("FirstMatchWithBudget", func(t *testing.T) {
		drop, err := e.DropAnswers(createRoute, 1)
		if err != nil {
			t.Fatal(err)
		}
		reset, err := e.ResetAnswers(Route{Path: `^/containers/create$`}, 1)
		if err != nil {
			t.Fatal(err)
		}
		other, err := e.DropAnswers(Route{Method: "GET", Path: `^/containers/create$`}, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = e.ClearAnswerFaults() }()
		// tcp: the drop gives EOF, the reset ECONNRESET, then it passes.
		_, err1 := createJob(ctx, t, proxiedTCP, "", "exit", "0")
		_, err2 := createJob(ctx, t, proxiedTCP, "", "exit", "0")
		_, err3 := createJob(ctx, t, proxiedTCP, "", "exit", "0")
		if !errors.Is(err1, io.EOF) || !errors.Is(err2, syscall.ECONNRESET) || err3 != nil {
			t.Errorf("three creates: %v; %v; %v; want EOF, ECONNRESET, nil", err1, err2, err3)
		}
		if drop.Hits() != 1 || reset.Hits() != 1 || other.Hits() != 0 {
			t.Errorf("hits: drop %d, reset %d, other method %d; want 1, 1, 0", drop.Hits(), reset.Hits(), other.Hits())
		}
		wctx, wcancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer wcancel()
		if err := drop.Wait(wctx, 1); err != nil {
			t.Errorf("Wait(1) with 1 hit: %v", err)
		}
		if err := drop.Wait(wctx, 2); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Wait(2) with 1 hit of a spent fault: %v, want context.DeadlineExceeded", err)
		}
	})

	t.Run("UnlimitedUntilCleared", func(t *testing.T) {
		fault, err := e.DropAnswers(Route{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if _, err := proxied.Ping(ctx, client.PingOptions{}); err == nil {
				t.Fatalf("ping %d with every answer dropped succeeded", i)
			}
		}
		if err := fault.Wait(ctx, 3); err != nil {
			t.Fatal(err)
		}
		if err := e.ClearAnswerFaults(); err != nil {
			t.Fatal(err)
		}
		if _, err := proxied.Ping(ctx, client.PingOptions{}); err != nil {
			t.Errorf("ping after ClearAnswerFaults: %v", err)
		}
		hits := fault.Hits()
		if _, err := createJob(ctx, t, proxied, "", "exit", "0"); err != nil {
			t.Errorf("create after ClearAnswerFaults: %v", err)
		}
		if fault.Hits() != hits {
			t.Errorf("a cleared fault still counts hits: %d, then %d", hits, fault.Hits())
		}
	})

	t.Run("KillRestart", func(t *testing.T) {
		if err := e.Kill(); err != nil {
			t.Fatal(err)
		}
		for _, cli := range []*client.Client{proxied, proxiedTCP} {
			pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := cli.Ping(pctx, client.PingOptions{})
			pcancel()
			if err == nil || errors.Is(err, context.DeadlineExceeded) || !client.IsErrConnectionFailed(err) {
				t.Errorf("ping through %s with dockerd killed: %v, want a connection failure at once", cli.DaemonHost(), err)
			}
			t.Logf("dead daemon through %s: %v", cli.DaemonHost(), err)
		}
		// A fault does not apply while the daemon is down.
		fault, err := e.DropAnswers(createRoute, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer fault.Clear()
		if _, err := createJob(ctx, t, proxied, "", "exit", "0"); err == nil {
			t.Error("create with dockerd killed succeeded")
		}
		if fault.Hits() != 0 {
			t.Errorf("Hits() = %d with dockerd killed, want 0", fault.Hits())
		}
		if err := e.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		for _, cli := range []*client.Client{proxied, proxiedTCP} {
			if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
				t.Errorf("ping through %s after Restart: %v", cli.DaemonHost(), err)
			}
		}
		if _, err := createJob(ctx, t, proxied, "", "exit", "0"); err == nil {
			t.Error("create after Restart succeeded, want its answer dropped (the budget was given back)")
		}
		if fault.Hits() != 1 {
			t.Errorf("Hits() = %d after Restart, want 1", fault.Hits())
		}
	})

	t.Run("CloseRemovesSocket", func(t *testing.T) {
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(e.AnswerSocket); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("answer socket after Close: %v, want it gone", err)
		}
		if _, err := e.DropAnswers(createRoute, 1); err == nil {
			t.Error("DropAnswers after Close succeeded")
		}
	})
}

func TestAnswerFaultRefused(t *testing.T) {
	shared := &Engine{Name: "s", shared: true, answers: newAnswerProxy("s", "/nonexistent", "/nonexistent")}
	if _, err := shared.DropAnswers(Route{}, 1); !errors.Is(err, ErrShared) {
		t.Errorf("DropAnswers on a shared engine: %v, want ErrShared", err)
	}
	if err := shared.ClearAnswerFaults(); !errors.Is(err, ErrShared) {
		t.Errorf("ClearAnswerFaults on a shared engine: %v, want ErrShared", err)
	}
	external := &Engine{Name: "x", external: true}
	if _, err := external.HoldAnswers(Route{}, 1); !errors.Is(err, ErrNotSupported) {
		t.Errorf("HoldAnswers on an external engine: %v, want ErrNotSupported", err)
	}
	if external.AnswerProxyHost() != "" || external.AnswerProxyTCPHost() != "" {
		t.Errorf("external engine has answer proxy hosts %q, %q", external.AnswerProxyHost(), external.AnswerProxyTCPHost())
	}
	private := &Engine{Name: "p", answers: newAnswerProxy("p", "/nonexistent", "/nonexistent")}
	if _, err := private.DropAnswers(Route{Path: "("}, 1); err == nil || !strings.Contains(err.Error(), "Route.Path") {
		t.Errorf("a bad path regexp: %v, want an error naming Route.Path", err)
	}
	if _, err := private.DropAnswers(Route{Method: "POST /x"}, 1); err == nil || !strings.Contains(err.Error(), "Route.Method") {
		t.Errorf("a bad method: %v, want an error naming Route.Method", err)
	}
	if _, err := private.DelayAnswers(Route{}, 1, 0); err == nil {
		t.Error("DelayAnswers with d = 0 succeeded")
	}
	private.answers.Stop()
	private.answers.Stop()
}

func TestAPIPath(t *testing.T) {
	for in, want := range map[string]string{
		"/v1.47/containers/create": "/containers/create",
		"/v1.41/_ping":             "/_ping",
		"/_ping":                   "/_ping",
		"/v2/x":                    "/x",
		"/v1.41":                   "/",
		"/version":                 "/version",
		"/volumes/v1.2":            "/volumes/v1.2",
	} {
		if got := apiPath(in); got != want {
			t.Errorf("apiPath(%q) = %q, want %q", in, got, want)
		}
	}
}
