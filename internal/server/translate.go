package server

import (
	"fusebox/breaker"
	"fusebox/internal/config"
	"fusebox/internal/dispatch"
	"fusebox/internal/engine"
	"fusebox/internal/fleet"
	"fusebox/internal/job"
)

// breakerSettings translates the file's circuit_breaker section.
func breakerSettings(c config.CircuitBreaker) breaker.Settings {
	s := breaker.Settings{
		ConsecutiveFailures: c.FailureThreshold,
		OpenDuration:        c.RecoveryTimeout,
		MaxOpenDuration:     c.MaxRecoveryTimeout,
		Jitter:              c.Jitter,
		HalfOpenTimeout:     c.HalfOpenTimeout,
		MaxProbes:           c.HalfOpenMaxProbes,
		ProbeSuccesses:      c.SuccessThreshold,
		ProbeTimeout:        c.ProbeTimeout,
	}
	if s.Jitter == 0 {
		s.Jitter = -1 // the file's 0 means "no jitter"; the breaker's zero means its default
	}
	if fr := c.FailureRate; fr != nil {
		s.FailureRate, s.Window, s.MinCalls = fr.Threshold, fr.Window, fr.MinCalls
	}
	if sc := c.SlowCall; sc != nil {
		s.SlowCallDuration, s.SlowCallRate = sc.Duration, sc.Rate
		if s.MinCalls == 0 || (sc.MinCalls > 0 && sc.MinCalls < s.MinCalls) {
			s.MinCalls = sc.MinCalls
		}
	}
	return s
}

func engineTimeouts(t config.DockerTimeouts) engine.Timeouts {
	return engine.Timeouts{
		Ping: t.Ping, Inspect: t.Inspect, Create: t.Create, Start: t.Start, Stop: t.Stop,
		Remove: t.Remove, List: t.List, ImageInspect: t.ImageInspect, ImageLoad: t.ImageLoad,
		ImagePull: t.ImagePull, Logs: t.Logs,
	}
}

// fleetConfig translates hosts, breaker and health-check settings.
func fleetConfig(c *config.Config) fleet.Config {
	fc := fleet.Config{
		Breaker:       breakerSettings(c.CircuitBreaker),
		NoDegradation: !c.GracefulDegradation.Enabled,
		Health: fleet.HealthConfig{
			Interval:           c.HealthCheck.Interval,
			Timeout:            c.HealthCheck.Timeout,
			Jitter:             c.HealthCheck.Jitter,
			HealthyThreshold:   c.HealthCheck.HealthyThreshold,
			UnhealthyThreshold: c.HealthCheck.UnhealthyThreshold,
			UnhealthyInterval:  c.HealthCheck.UnhealthyInterval,
			BaseEjectionTime:   c.HealthCheck.BaseEjectionTime,
			MaxEjectedPercent:  maxEjectedPercent(c.GracefulDegradation),
			Canary: fleet.CanaryConfig{
				Enabled:  c.HealthCheck.Canary.Enabled,
				Image:    c.HealthCheck.Canary.Image,
				Interval: c.HealthCheck.Canary.Interval,
			},
		},
		BreakersDisabled: !c.CircuitBreaker.Enabled,
	}
	if fc.Health.Jitter == 0 {
		fc.Health.Jitter = -1 // the file's 0 means "no jitter"; the fleet's zero means its default
	}
	for _, h := range c.Hosts {
		ec := engine.Config{Address: h.Address, NetworkMode: h.NetworkMode, Timeouts: engineTimeouts(c.DockerTimeouts)}
		if h.TLS != nil {
			ec.TLS = &engine.TLS{CAFile: h.TLS.CA, CertFile: h.TLS.Cert, KeyFile: h.TLS.Key, InsecureSkipVerify: h.TLS.InsecureSkipVerify}
		}
		// Every host carries its name as a label, so that a job pins itself
		// to one host with a constraint (fusebox run --host NAME).
		labels := map[string]string{}
		for k, v := range h.Labels {
			labels[k] = v
		}
		labels[job.ConstraintHost] = h.Name
		fc.Hosts = append(fc.Hosts, fleet.HostConfig{Name: h.Name, Engine: ec, Labels: labels, Capacity: h.Capacity, Weight: h.Weight})
	}
	return fc
}

// dispatchConfig translates queue, retry, lost-host, logs and polling.
func dispatchConfig(c *config.Config) dispatch.Config {
	return dispatch.Config{
		MaxQueued:    c.Queue.MaxQueuedJobs,
		MaxAttempts:  c.Retry.MaxAttempts,
		Backoff:      c.Retry.Backoff,
		MaxBackoff:   c.Retry.MaxBackoff,
		Jitter:       c.Retry.Jitter,
		LogMaxBytes:  int(c.Logs.MaxBytes),
		PollInterval: c.PollInterval,
		StopGrace:    c.StopGracePeriod,
		Retention:    c.Retention,
		LostAfter:    c.LostHost.After,
		LostPolicy:   dispatch.LostPolicy(c.LostHost.Policy),
		// Without graceful degradation a job no host can take fails at
		// once, as the systems fusebox replaces did.
		NoDegradation: !c.GracefulDegradation.Enabled,
		SpecLimits:    specLimits(c.SpecLimits),
	}
}

// specLimits translates spec_limits.
func specLimits(l config.SpecLimits) job.Limits {
	return job.Limits{
		MaxSpecBytes:   int(l.MaxSpecBytes),
		MaxCommandArgs: l.MaxCommandArgs,
		MaxEnv:         l.MaxEnv,
		MaxLabels:      l.MaxLabels,
		MaxArgBytes:    int(l.MaxArgBytes),
	}
}

// maxEjectedPercent translates graceful_degradation.max_ejected_percent: 0
// there means never eject for slowness. Without graceful degradation there
// is no cap.
func maxEjectedPercent(g config.GracefulDegradation) int {
	switch {
	case !g.Enabled:
		return 100
	case g.MaxEjectedPercent == 0:
		return -1
	}
	return g.MaxEjectedPercent
}
