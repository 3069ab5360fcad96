package apiclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"fusebox/internal/api"
	"fusebox/internal/job"
)

// LogOptions are what docker logs takes besides the job: only the output
// logged at or after Since (if not zero), and each line prefixed with its
// time (job.TimestampFormat) and a space. A job whose output was kept
// without times refuses either with an *Error of Code api.CodeNoLogTimes.
type LogOptions struct {
	Since      time.Time
	Timestamps bool
}

func (o LogOptions) query(q url.Values) url.Values {
	if q == nil {
		q = url.Values{}
	}
	if !o.Since.IsZero() {
		q.Set("since", o.Since.UTC().Format(time.RFC3339Nano))
	}
	if o.Timestamps {
		q.Set("timestamps", "true")
	}
	return q
}

// Logs returns a job's collected output. Before any is collected it returns
// an *Error with Code api.CodeNoLogs.
func (c *Client) Logs(ctx context.Context, id string) (job.Logs, error) {
	return c.LogsWith(ctx, id, LogOptions{})
}

// LogsWith is Logs with options.
func (c *Client) LogsWith(ctx context.Context, id string, o LogOptions) (job.Logs, error) {
	var out api.LogsResponse
	if _, err := c.do(ctx, http.MethodGet, jobPath(id, "/logs"), o.query(nil), nil, &out); err != nil {
		return job.Logs{}, err
	}
	return job.Logs{Stdout: []byte(out.Stdout), Stderr: []byte(out.Stderr), Truncated: out.Truncated}, nil
}

// FollowLogEvents calls fn with each event of a log follow, the end event
// included, until the job ends, ctx is done, or fn returns an error. An
// error event from the server, or a stream cut before its end, is an error.
func (c *Client) FollowLogEvents(ctx context.Context, id string, fn func(api.LogEvent) error) error {
	return c.FollowLogEventsWith(ctx, id, LogOptions{}, fn)
}

// FollowLogEventsWith is FollowLogEvents with options.
func (c *Client) FollowLogEventsWith(ctx context.Context, id string, o LogOptions, fn func(api.LogEvent) error) error {
	req, err := c.request(ctx, http.MethodGet, jobPath(id, "/logs"), o.query(url.Values{"follow": {"true"}}), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/x-ndjson")
	res, err := c.send(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var ev api.LogEvent
		if err := json.Unmarshal(line, &ev); err != nil {
			return fmt.Errorf("apiclient: following logs of job %s: bad event %q: %w", id, line, err)
		}
		if ev.Error != "" {
			return fmt.Errorf("following logs of job %s: %s", id, ev.Error)
		}
		if err := fn(ev); err != nil {
			return err
		}
		if ev.End {
			return nil
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("following logs of job %s: %w", id, err)
	}
	return fmt.Errorf("following logs of job %s: the stream ended before the job did", id)
}

// FollowLogs copies a job's output to stdout and stderr as it is written,
// until the job ends. For a finished job it copies the collected output.
func (c *Client) FollowLogs(ctx context.Context, id string, stdout, stderr io.Writer) error {
	return c.FollowLogsWith(ctx, id, LogOptions{}, stdout, stderr)
}

// FollowLogsWith is FollowLogs with options.
func (c *Client) FollowLogsWith(ctx context.Context, id string, o LogOptions, stdout, stderr io.Writer) error {
	return c.FollowLogEventsWith(ctx, id, o, func(ev api.LogEvent) error {
		var w io.Writer
		switch ev.Stream {
		case "stdout":
			w = stdout
		case "stderr":
			w = stderr
		default:
			return nil
		}
		_, err := io.WriteString(w, ev.Data)
		return err
	})
}
