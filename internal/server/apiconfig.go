package server

import (
	"context"
	"errors"
	"io"

	"fusebox/internal/api"
	"fusebox/internal/config"
	"fusebox/internal/dispatch"
	"fusebox/internal/engine"
	"fusebox/internal/job"
	"fusebox/internal/metrics"
)

// apiConfig translates the file's api section, with the tokens.
func apiConfig(c *config.Config, tokens []api.Token) api.Config {
	ac := api.Config{
		Tokens:             tokens,
		InsecureHTTP:       c.API.InsecureHTTP,
		MaxFollowsPerToken: c.API.MaxFollowsPerToken,
		FollowStartTimeout: c.API.FollowStartTimeout,
	}
	if c.API.TLS.Cert != "" || c.API.TLS.Key != "" {
		ac.TLS = &api.TLSFiles{CertFile: c.API.TLS.Cert, KeyFile: c.API.TLS.Key}
	}
	return ac
}

// Tokens translates the file's auth.tokens.
func Tokens(c *config.Config) []api.Token {
	var tokens []api.Token
	for _, t := range c.Auth.Tokens {
		tokens = append(tokens, api.Token{Value: t.Token, Role: api.Role(t.Role), Name: t.Name})
	}
	return tokens
}

// CheckListen refuses cfg's listen address as the API would: beyond
// loopback without tokens, or without TLS unless api.insecure_http says so.
// `fusebox serve` calls it before opening anything.
func CheckListen(cfg *config.Config, tokens []api.Token) error {
	return apiConfig(cfg, tokens).CheckListen(cfg.Listen)
}

// service adapts the dispatcher to the API's Service: it gives a full
// queue's error its retry hint, and counts the submissions refused for a
// reused idempotency key.
type service struct {
	*dispatch.Dispatcher
	metrics *metrics.Metrics
}

func (s service) Submit(ctx context.Context, spec job.Spec) (*job.Job, bool, error) {
	j, existed, err := s.Dispatcher.Submit(ctx, spec)
	if errors.Is(err, job.ErrDuplicate) {
		s.metrics.JobRejected(metrics.RejectDuplicate)
	}
	return j, existed, submitError(err)
}

// submitError gives an error of Submit what the API reads: a
// *dispatch.QueueFullError's RetryAfter field as its RetryHint.
func submitError(err error) error {
	var qf *dispatch.QueueFullError
	if errors.As(err, &qf) && qf.RetryAfter > 0 {
		return api.WithRetryAfter(err, qf.RetryAfter)
	}
	return err
}

func (s service) QueueStats(ctx context.Context) (api.QueueStats, error) {
	qs, err := s.Stats(ctx)
	return api.QueueStats{Queued: qs.Queued, Running: qs.Running, MaxQueued: qs.MaxQueued, ByState: qs.ByState}, err
}

func (s service) FollowLogs(ctx context.Context, id string, opts api.LogOptions, stdout, stderr io.Writer) error {
	return s.Dispatcher.FollowLogs(ctx, id, engine.FollowOptions{Since: opts.Since, Timestamps: opts.Timestamps}, stdout, stderr)
}
