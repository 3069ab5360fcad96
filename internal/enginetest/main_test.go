package enginetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

func TestMain(m *testing.M) { Main(m) }

// eventually calls f until it returns nil or the timeout passes (then the
// test fails with f's last error), through Eventually.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	var err error
	Eventually(t, timeout, what, func() bool { err = f(); return err == nil }, func() string { return "last error: " + err.Error() })
}

// runResult is what runJob saw.
type runResult struct {
	Code           int64
	Stdout, Stderr string
	Took           time.Duration // create + start + wait + remove
}

// runJob runs fusebox-testjob with args in the test image through cli and
// removes the container.
func runJob(ctx context.Context, cli *client.Client, ref string, args ...string) (runResult, error) {
	return runCmd(ctx, cli, ref, append([]string{TestjobPath}, args...))
}

// runCmd runs cmd in the test image through cli and removes the container.
func runCmd(ctx context.Context, cli *client.Client, ref string, cmd []string) (runResult, error) {
	var r runResult
	began := time.Now()
	created, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:     &container.Config{Image: ref, Cmd: cmd, Labels: map[string]string{"fusebox.enginetest": "1"}},
		HostConfig: &container.HostConfig{NetworkMode: "none"},
	})
	if err != nil {
		return r, fmt.Errorf("create: %w", err)
	}
	defer func() {
		_, _ = cli.ContainerRemove(context.Background(), created.ID, client.ContainerRemoveOptions{Force: true})
	}()
	wait := cli.ContainerWait(ctx, created.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		return r, fmt.Errorf("start: %w", err)
	}
	select {
	case res := <-wait.Result:
		if res.Error != nil {
			return r, fmt.Errorf("wait: %s", res.Error.Message)
		}
		r.Code = res.StatusCode
	case err := <-wait.Error:
		return r, fmt.Errorf("wait: %w", err)
	}
	logs, err := cli.ContainerLogs(ctx, created.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return r, fmt.Errorf("logs: %w", err)
	}
	var out, errOut strings.Builder
	_, err = stdcopy.StdCopy(&out, &errOut, logs)
	logs.Close()
	if err != nil && !errors.Is(err, io.EOF) {
		return r, fmt.Errorf("logs: %w", err)
	}
	r.Stdout, r.Stderr = out.String(), errOut.String()
	if _, err := cli.ContainerRemove(ctx, created.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
		return r, fmt.Errorf("remove: %w", err)
	}
	r.Took = time.Since(began)
	return r, nil
}
