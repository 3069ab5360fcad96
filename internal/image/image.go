package image

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"fusebox/breaker"
	"fusebox/internal/fleet"
)

// Config configures a Distributor.
type Config struct {
	// Transfer streams an image from a host that has it to a placed job's
	// host that lacks it (images.transfer, on by default in the config).
	Transfer bool
	// Registries are the configured credentials, by registry host.
	Registries []Registry
	// DockerConfig is docker login's config.json, read when present (its
	// "auths"); configured Registries win. "": none.
	DockerConfig string
	// Breaker is the settings of each registry's breaker; a zero field
	// means the default below (not the host breakers').
	Breaker breaker.Settings
	// SpoolDir is where Load keeps an upload while it goes to the hosts
	// (the data dir). Required for Load.
	SpoolDir string
	Logger   *slog.Logger
}

// Defaults of a registry's breaker.
const (
	RegistryFailuresDefault     = 3
	RegistryOpenDurationDefault = 10 * time.Second
)

// Fleet is what the distributor needs of the fleet (*fleet.Fleet is one).
type Fleet interface {
	Hosts() []*fleet.Host
	Host(name string) *fleet.Host
}

// Distributor gets images onto hosts. It is safe for concurrent use.
type Distributor struct {
	cfg      Config
	fleet    Fleet
	breakers *breaker.Registry
	creds    map[string]Registry
	log      *slog.Logger

	stats counters

	mu      sync.Mutex
	flights map[string]*flight // dst host + "\x00" + ref -> the transfer in progress
}

// New returns a distributor for the fleet's hosts, whose registry breakers
// live in breakers (the fleet's registry of named breakers).
func New(cfg Config, fl Fleet, breakers *breaker.Registry) (*Distributor, error) {
	if cfg.Breaker.ConsecutiveFailures == 0 {
		cfg.Breaker.ConsecutiveFailures = RegistryFailuresDefault
	}
	if cfg.Breaker.OpenDuration == 0 {
		cfg.Breaker.OpenDuration = RegistryOpenDurationDefault
	}
	creds, err := readDockerConfig(cfg.DockerConfig)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	for i, r := range cfg.Registries {
		if r.Host == "" {
			return nil, fmt.Errorf("image: registries[%d]: host is required", i)
		}
		if r.IdentityToken == "" && (r.Username == "" || r.Password == "") {
			return nil, fmt.Errorf("image: registries[%d] (%s): a username with a password, or an identity token, is required", i, r.Host)
		}
		r.Host = normalizeRegistryHost(r.Host)
		creds[r.Host] = r
	}
	d := &Distributor{cfg: cfg, fleet: fl, breakers: breakers, creds: creds, log: cfg.Logger, flights: map[string]*flight{}}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if _, err := d.breaker("check.invalid"); err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	breakers.Remove(BreakerPrefix + "check.invalid")
	return d, nil
}

// ErrNoImage is matched (errors.Is) by Provide's error when the image is
// on no host and cannot be pulled: the job's own failure, a *NoImageError
// saying so in one sentence.
var ErrNoImage = errors.New("image is on no host and cannot be pulled")

// Policy is a job's pull policy, as Provide takes it.
type Policy string

const (
	PullMissing Policy = "missing"
	PullAlways  Policy = "always"
	PullNever   Policy = "never"
)

// Provide brings ref onto h, which lacks it (or, with PullAlways, must pull
// it again), for a job placed there. The caller holds h's lease: calls on
// h go straight to its engine (its limiter still applies); calls on a
// source host go through that host's breaker and limiter.
//
// With PullNever or PullMissing the image is transferred from a host that
// has it, when transfers are on; with PullMissing it is pulled when no
// host has it; with PullAlways it is pulled. Errors: a *WaitError (the
// registry is out: wait and retry); a job-class error wrapping ErrNoImage
// or the registry's refusal; a host fault of h.
func (d *Distributor) Provide(ctx context.Context, h *fleet.Host, ref string, policy Policy) error {
	if policy == PullAlways {
		return d.Pull(ctx, h, ref)
	}
	if d.cfg.Transfer {
		err := d.Transfer(ctx, h, ref)
		if !errors.Is(err, errNoSource) {
			return err
		}
	}
	if policy == PullNever {
		return noImage(h, ref, "its pull policy is never", d.cfg.Transfer)
	}
	err := d.Pull(ctx, h, ref)
	var w *WaitError
	if errors.As(err, &w) {
		if host, _ := RegistryOf(ref); !d.known(ref, host) {
			return noImage(h, ref, fmt.Sprintf("%s could not be reached (%v)", host, w.Err), d.cfg.Transfer)
		}
		return err
	}
	if isRefusal(err) {
		return noImage(h, ref, fmt.Sprintf("the pull was refused: %v", errMessage(err)), d.cfg.Transfer)
	}
	return err
}
