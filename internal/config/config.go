package config

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Config is the whole of fusebox's configuration: the file, with the
// environment applied and every default filled. Durations are already parsed.
//
// The yaml tag of each field is its key in the file; its path (for example
// circuit_breaker.failure_threshold) names it in problems and, upper-cased with
// "_" and prefixed with FUSEBOX_, is its environment variable. An alias tag
// names an older key that is accepted with the same meaning.
type Config struct {
	Listen              string              `yaml:"listen"`
	DataDir             string              `yaml:"data_dir"`
	Database            string              `yaml:"database"`
	LogLevel            string              `yaml:"log_level"`
	Hosts               []Host              `yaml:"hosts"`
	CircuitBreaker      CircuitBreaker      `yaml:"circuit_breaker"`
	HealthCheck         HealthCheck         `yaml:"health_check"`
	Queue               Queue               `yaml:"queue"`
	SpecLimits          SpecLimits          `yaml:"spec_limits"`
	GracefulDegradation GracefulDegradation `yaml:"graceful_degradation"`
	Retry               Retry               `yaml:"retry"`
	LostHost            LostHost            `yaml:"lost_host"`
	Logs                Logs                `yaml:"logs"`
	DockerTimeouts      DockerTimeouts      `yaml:"docker_timeouts"`
	PollInterval        time.Duration       `yaml:"poll_interval"`
	StopGracePeriod     time.Duration       `yaml:"stop_grace_period"`
	Retention           time.Duration       `yaml:"retention"` // finished jobs are deleted this long after they end; 0 keeps them
	Auth                Auth                `yaml:"auth"`
	API                 API                 `yaml:"api"`
	Alerts              Alerts              `yaml:"alerts"`
	Workflows           Workflows           `yaml:"workflows"`
	MCP                 MCP                 `yaml:"mcp"`
	Images              Images              `yaml:"images"`
	Registries          []Registry          `yaml:"registries"`
}

// Images say how images reach the hosts (internal/image).
type Images struct {
	// Transfer streams a job's image from a host that has it to the host
	// the job was placed on when that host lacks it (no registry needed).
	Transfer bool `yaml:"transfer"`
	// DockerConfig is docker login's config.json, whose "auths" are used
	// for pulls when present; "" = $DOCKER_CONFIG/config.json or
	// ~/.docker/config.json. Credentials in registries win.
	DockerConfig string `yaml:"docker_config"`
	// RegistryBreaker is the breaker of each registry ("registry/<host>"):
	// failed pulls in a row (the registry unreachable or failing, never a
	// refusal) that open it, and how long it stays open before a probe.
	RegistryBreaker RegistryBreaker `yaml:"registry_breaker"`
}

// RegistryBreaker is the breaker of one registry.
type RegistryBreaker struct {
	FailureThreshold int           `yaml:"failure_threshold"`
	ResetTimeout     time.Duration `yaml:"reset_timeout"`
}

// Registry is the credentials of one registry, sent with pulls of images
// on Host: a username with a password, or an identity token. Each secret
// is given inline, or read from a file (…_file) or an environment
// variable (…_env, its name). Secrets are never logged or shown.
type Registry struct {
	Host              string `yaml:"host"` // as image references name it: "ghcr.io", "127.0.0.1:5000", "docker.io"
	Username          string `yaml:"username"`
	Password          string `yaml:"password"`
	PasswordFile      string `yaml:"password_file"`
	PasswordEnv       string `yaml:"password_env"`
	IdentityToken     string `yaml:"identity_token"`
	IdentityTokenFile string `yaml:"identity_token_file"`
	IdentityTokenEnv  string `yaml:"identity_token_env"`
}

// Secrets returns the registry's password and identity token, read from
// where the config says (inline, a file, an environment variable). An
// error names the field.
func (r Registry) Secrets(lookup func(string) (string, bool)) (password, token string, err error) {
	read := func(field, inline, file, env string) (string, error) {
		switch {
		case inline != "":
			return inline, nil
		case file != "":
			b, err := os.ReadFile(file)
			if err != nil {
				return "", fmt.Errorf("registries (%s): %s_file: %w", r.Host, field, err)
			}
			return strings.TrimRight(string(b), "\r\n"), nil
		case env != "":
			v, ok := lookup(env)
			if !ok || v == "" {
				return "", fmt.Errorf("registries (%s): %s_env: $%s is not set", r.Host, field, env)
			}
			return v, nil
		}
		return "", nil
	}
	if password, err = read("password", r.Password, r.PasswordFile, r.PasswordEnv); err != nil {
		return "", "", err
	}
	if token, err = read("identity_token", r.IdentityToken, r.IdentityTokenFile, r.IdentityTokenEnv); err != nil {
		return "", "", err
	}
	return password, token, nil
}

// Redacted returns r with its inline secrets replaced by "<redacted>"
// (file paths and variable names stay: they are not secrets).
func (r Registry) Redacted() Registry {
	if r.Password != "" {
		r.Password = Redacted
	}
	if r.IdentityToken != "" {
		r.IdentityToken = Redacted
	}
	return r
}

// Redacted stands for a secret in what fusebox shows.
const Redacted = "<redacted>"

// MCP configures the MCP server at /mcp of fusebox serve (internal/mcpserver).
type MCP struct {
	// ReadOnly registers only the tools annotated read-only: an agent can
	// look at jobs, hosts and workflows but change nothing.
	ReadOnly bool `yaml:"read_only"`
}

// Workflows configure the workflow runner: its step cache, its artifact
// store (in data_dir/artifacts) and the default settings of the breaker of
// each workflow, by the names of the system fusebox replaces (a
// definition's circuit_breaker overrides them).
type Workflows struct {
	CacheTTL         time.Duration    `yaml:"cache_ttl"`          // a cached step result is reused this long
	MaxArtifactBytes Size             `yaml:"max_artifact_bytes"` // each output of a step, as a tar
	MaxRunBytes      Size             `yaml:"max_run_bytes"`      // all the outputs of one run together
	CircuitBreaker   WorkflowsBreaker `yaml:"circuit_breaker"`
}

// WorkflowsBreaker is the default breaker of a workflow.
type WorkflowsBreaker struct {
	FailureThreshold int           `yaml:"failure_threshold"` // failed runs in a row (their own failures) that open it
	ResetTimeout     time.Duration `yaml:"reset_timeout"`     // open this long before a probe run goes through
	HalfOpenTimeout  time.Duration `yaml:"half_open_timeout"` // a probe run that has not ended this long frees its slot
}

// Auth says who may use the HTTP API. With no tokens the API is open, and
// fusebox refuses to listen beyond loopback.
type Auth struct {
	Tokens []Token `yaml:"tokens"`
}

// Token is one bearer token and the role it grants: read (every GET),
// submit (also submit and cancel jobs) or admin (also isolate, drain,
// release and reset hosts).
type Token struct {
	Name  string `yaml:"name"`  // who holds it, for logs; never the secret
	Token string `yaml:"token"` // the secret sent as "Authorization: Bearer ..."
	Role  string `yaml:"role"`
}

// API is the HTTP API's transport and bounds. Beyond loopback it needs
// TLS (or InsecureHTTP, in so many words) as well as auth tokens.
type API struct {
	TLS          APITLS `yaml:"tls"`
	InsecureHTTP bool   `yaml:"insecure_http"` // plain HTTP beyond loopback (a proxy terminates TLS)
	// MaxFollowsPerToken bounds the log follows one token (or, without
	// tokens, every client together) has open at once.
	MaxFollowsPerToken int `yaml:"max_follows_per_token"`
	// FollowStartTimeout ends a log follow of a job that stays queued or
	// launching this long.
	FollowStartTimeout time.Duration `yaml:"follow_start_timeout"`
}

// APITLS is the API server's certificate (with its chain) and key, PEM
// files read again when they change. Both empty: no TLS. Relative paths in
// a file are resolved against the file's directory by Load.
type APITLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Alerts are the operator alerts (breaker open, all hosts out, queue
// nearly full, host degraded, job lost), sent as Alertmanager webhooks
// signed per Standard Webhooks to every receiver. With no receivers alerts
// are still evaluated (and logged), but sent nowhere.
type Alerts struct {
	RepeatInterval time.Duration   `yaml:"repeat_interval"` // a still-firing alert is sent again this long after the last time
	QueueThreshold float64         `yaml:"queue_threshold"` // share of queue.max_queued_jobs that alerts
	EvalInterval   time.Duration   `yaml:"eval_interval"`   // conditions are checked this often, besides on every event
	DegradedFor    time.Duration   `yaml:"degraded_for"`    // a host degraded this long fires FuseboxHostDegraded
	Backoff        time.Duration   `yaml:"backoff"`         // first retry delay of a failed delivery (doubling, full jitter)
	MaxBackoff     time.Duration   `yaml:"max_backoff"`
	ExternalURL    string          `yaml:"external_url"` // fusebox's URL as receivers reach it (externalURL, generatorURL); "" = none
	Receivers      []AlertReceiver `yaml:"receivers"`
}

// AlertReceiver is one webhook endpoint of the alerts.
type AlertReceiver struct {
	Name    string        `yaml:"name"`
	URL     string        `yaml:"url"`    // http:// or https://
	Secret  string        `yaml:"secret"` // "whsec_" + base64 of 24 to 64 bytes: the signing key
	Timeout time.Duration `yaml:"timeout"`
}

// Roles lists the valid token roles.
var Roles = []string{"read", "submit", "admin"}

// Host is one Docker engine of the fleet.
type Host struct {
	Name        string            `yaml:"name"`
	Address     string            `yaml:"address"` // unix:///path or tcp://host:port
	TLS         *TLS              `yaml:"tls"`     // nil: no TLS; only with tcp://
	Labels      map[string]string `yaml:"labels"`
	Capacity    int               `yaml:"capacity"`
	Weight      float64           `yaml:"weight"`
	NetworkMode string            `yaml:"network_mode"` // "" = the engine's default
}

// TLS is the client side of a tcp+TLS connection to a Docker engine. Relative
// paths in a file are resolved against the file's directory by Load.
type TLS struct {
	CA                 string `yaml:"ca"`   // "" = system roots
	Cert               string `yaml:"cert"` // client certificate; with Key
	Key                string `yaml:"key"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// CircuitBreaker holds the settings of every host's breaker.
type CircuitBreaker struct {
	Enabled            bool          `yaml:"enabled"` // false: breakers are "disabled" (always closed, still recording)
	FailureThreshold   int           `yaml:"failure_threshold"`
	RecoveryTimeout    time.Duration `yaml:"recovery_timeout" alias:"reset_timeout"`
	MaxRecoveryTimeout time.Duration `yaml:"max_recovery_timeout"`
	Jitter             float64       `yaml:"jitter"`
	HalfOpenTimeout    time.Duration `yaml:"half_open_timeout"`
	HalfOpenMaxProbes  int           `yaml:"half_open_max_probes"`
	SuccessThreshold   int           `yaml:"success_threshold"`
	ProbeTimeout       time.Duration `yaml:"probe_timeout"`
	FailureRate        *FailureRate  `yaml:"failure_rate"` // nil: off
	SlowCall           *SlowCall     `yaml:"slow_call"`    // nil: off
}

// FailureRate trips a breaker when the share of failed calls in a rolling
// window passes Threshold, once MinCalls calls were made in it.
type FailureRate struct {
	Threshold float64       `yaml:"threshold"`
	Window    time.Duration `yaml:"window"`
	MinCalls  int           `yaml:"min_calls"`
}

// SlowCall trips a breaker when the share of calls slower than Duration passes
// Rate, once MinCalls calls were made.
type SlowCall struct {
	Duration time.Duration `yaml:"duration"`
	Rate     float64       `yaml:"rate"`
	MinCalls int           `yaml:"min_calls"`
}

// HealthCheck is the active checking of every host: an ejection rule of its
// own, apart from circuit_breaker.failure_threshold (which counts failed
// real calls). UnhealthyThreshold failed checks in a row open the host's
// breaker for BaseEjectionTime × the trips in a row; it is then probed and
// closed as after any trip.
type HealthCheck struct {
	Interval           time.Duration `yaml:"interval"`
	Timeout            time.Duration `yaml:"timeout"`
	Jitter             float64       `yaml:"jitter"`
	HealthyThreshold   int           `yaml:"healthy_threshold"`
	UnhealthyThreshold int           `yaml:"unhealthy_threshold"`
	UnhealthyInterval  time.Duration `yaml:"unhealthy_interval"` // after a failed check, until ejected or passing
	BaseEjectionTime   time.Duration `yaml:"base_ejection_time"`
	Canary             Canary        `yaml:"canary"`
}

// Canary is a container started now and then to prove a host can really start
// containers.
type Canary struct {
	Enabled  bool          `yaml:"enabled"`
	Image    string        `yaml:"image"` // required when Enabled
	Interval time.Duration `yaml:"interval"`
}

// Queue bounds the jobs waiting for a host.
type Queue struct {
	MaxQueuedJobs int `yaml:"max_queued_jobs"` // also accepted at the top level (old name)
}

// SpecLimits bound what one job spec may hold, so that no submission can
// make the server store or schedule an unbounded amount of data. A spec past
// them is refused at submit with an error naming the field.
type SpecLimits struct {
	MaxSpecBytes   Size `yaml:"max_spec_bytes"` // the whole spec, as JSON
	MaxCommandArgs int  `yaml:"max_command_args"`
	MaxEnv         int  `yaml:"max_env"`       // environment variables
	MaxLabels      int  `yaml:"max_labels"`    // labels, and constraints, each
	MaxArgBytes    Size `yaml:"max_arg_bytes"` // each command argument, env entry (NAME=value), label and constraint (key=value)
}

// GracefulDegradation is what fusebox does when hosts are slow or failing.
type GracefulDegradation struct {
	Enabled           bool `yaml:"enabled"`
	MaxEjectedPercent int  `yaml:"max_ejected_percent"` // 0..100
}

// Retry is the default retry policy of a job; a job may override it.
type Retry struct {
	MaxAttempts int           `yaml:"max_attempts"`
	Backoff     time.Duration `yaml:"backoff"`
	MaxBackoff  time.Duration `yaml:"max_backoff"`
	Jitter      float64       `yaml:"jitter"`
}

// LostHostPolicy is what happens to a job whose host stays unreachable.
type LostHostPolicy string

const (
	LostHostReschedule LostHostPolicy = "reschedule" // run it again elsewhere (a new attempt)
	LostHostLost       LostHostPolicy = "lost"       // mark it lost and leave it to the user
)

// LostHost is the rule for jobs on a host that stops answering.
type LostHost struct {
	After  time.Duration  `yaml:"after"`
	Policy LostHostPolicy `yaml:"policy"`
}

// Logs is the collection of container logs.
type Logs struct {
	MaxBytes Size `yaml:"max_bytes"` // per stream
}

// DockerTimeouts is the deadline of each kind of Docker API call.
type DockerTimeouts struct {
	Ping         time.Duration `yaml:"ping"`
	Inspect      time.Duration `yaml:"inspect"`
	Create       time.Duration `yaml:"create"`
	Start        time.Duration `yaml:"start"`
	Stop         time.Duration `yaml:"stop"`
	Remove       time.Duration `yaml:"remove"`
	List         time.Duration `yaml:"list"`
	ImageInspect time.Duration `yaml:"image_inspect"`
	ImageLoad    time.Duration `yaml:"image_load"`
	ImagePull    time.Duration `yaml:"image_pull"`
	Logs         time.Duration `yaml:"logs"`
}

// Defaults. A duration or size here is what an absent key means.
const (
	ListenDefault     = "127.0.0.1:7070"
	DataDirSystem     = "/var/lib/fusebox" // data_dir when running as root
	DatabaseFile      = "fusebox.db"       // the SQLite file in data_dir when database is ""
	DatabaseDefault   = ""
	LogLevelDefault   = "info"
	LocalHostName     = "local"                       // the name of the default host
	DockerHostDefault = "unix:///var/run/docker.sock" // its address when DOCKER_HOST is unset

	HostCapacityDefault = 4
	HostWeightDefault   = 1.0

	BreakerEnabledDefault       = true
	FailureThresholdDefault     = 5
	RecoveryTimeoutDefault      = 60 * time.Second
	MaxRecoveryTimeoutDefault   = 10 * time.Minute
	BreakerJitterDefault        = 0.1
	HalfOpenTimeoutDefault      = 30 * time.Second
	HalfOpenMaxProbesDefault    = 1
	SuccessThresholdDefault     = 1
	ProbeTimeoutDefault         = 2 * time.Minute
	FailureRateThresholdDefault = 0.5
	FailureRateWindowDefault    = 60 * time.Second
	FailureRateMinCallsDefault  = 20
	SlowCallDurationDefault     = 5 * time.Second
	SlowCallRateDefault         = 0.8
	SlowCallMinCallsDefault     = 20

	// A hung daemon is ejected within about 3.5 s, a dead one within 1.5 s.
	HealthCheckIntervalDefault          = 1 * time.Second
	HealthCheckTimeoutDefault           = 1 * time.Second
	HealthCheckJitterDefault            = 0.2
	HealthyThresholdDefault             = 2
	UnhealthyThresholdDefault           = 2
	HealthCheckUnhealthyIntervalDefault = 250 * time.Millisecond
	BaseEjectionTimeDefault             = 5 * time.Second
	CanaryEnabledDefault                = false
	CanaryIntervalDefault               = 5 * time.Minute

	MaxQueuedJobsDefault = 1000

	SpecMaxSpecBytesDefault   Size = 64 << 10 // 64KiB
	SpecMaxCommandArgsDefault      = 1024
	SpecMaxEnvDefault              = 256
	SpecMaxLabelsDefault           = 64
	SpecMaxArgBytesDefault    Size = 32 << 10 // 32KiB
	SpecMaxSpecBytesMax       Size = 16 << 20 // the most max_spec_bytes may be

	DegradationEnabledDefault = true
	MaxEjectedPercentDefault  = 50

	RetryMaxAttemptsDefault = 3
	RetryBackoffDefault     = 1 * time.Second
	RetryMaxBackoffDefault  = 1 * time.Minute
	RetryJitterDefault      = 0.2

	LostHostAfterDefault  = 5 * time.Minute
	LostHostPolicyDefault = LostHostReschedule

	LogsMaxBytesDefault Size = 1 << 20 // 1MiB

	DockerPingTimeoutDefault         = 2 * time.Second
	DockerInspectTimeoutDefault      = 5 * time.Second
	DockerCreateTimeoutDefault       = 30 * time.Second
	DockerStartTimeoutDefault        = 30 * time.Second
	DockerStopTimeoutDefault         = 30 * time.Second
	DockerRemoveTimeoutDefault       = 30 * time.Second
	DockerListTimeoutDefault         = 10 * time.Second
	DockerImageInspectTimeoutDefault = 5 * time.Second
	DockerImageLoadTimeoutDefault    = 5 * time.Minute
	DockerImagePullTimeoutDefault    = 10 * time.Minute
	DockerLogsTimeoutDefault         = 30 * time.Second

	PollIntervalDefault    = 2 * time.Second
	StopGracePeriodDefault = 10 * time.Second
	RetentionDefault       = 7 * 24 * time.Hour

	APIMaxFollowsPerTokenDefault = 8
	APIFollowStartTimeoutDefault = 10 * time.Minute

	ImagesTransferDefault            = true
	RegistryFailureThresholdDefault  = 3
	RegistryResetTimeoutDefault      = 10 * time.Second
	WorkflowsCacheTTLDefault         = 7 * 24 * time.Hour
	WorkflowsMaxArtifactBytesDefault = Size(1 << 30)
	WorkflowsMaxRunBytesDefault      = Size(10 << 30)
	WorkflowsFailureThresholdDefault = 5
	WorkflowsResetTimeoutDefault     = time.Minute
	WorkflowsHalfOpenTimeoutDefault  = time.Hour
	AlertsRepeatIntervalDefault      = 4 * time.Hour
	AlertsQueueThresholdDefault      = 0.8
	AlertsEvalIntervalDefault        = 5 * time.Second
	AlertsDegradedForDefault         = time.Minute
	AlertsBackoffDefault             = 1 * time.Second
	AlertsMaxBackoffDefault          = 5 * time.Minute
	AlertReceiverTimeoutDefault      = 5 * time.Second
)

// LogLevels are the accepted values of log_level.
var LogLevels = []string{"debug", "info", "warn", "error"}

// LostHostPolicies are the accepted values of lost_host.policy.
var LostHostPolicies = []LostHostPolicy{LostHostReschedule, LostHostLost}

// Default returns the configuration used when there is no file and no
// FUSEBOX_* variable: the local Docker engine (DOCKER_HOST, else
// unix:///var/run/docker.sock) as the only host, and SQLite in the data dir
// ($FUSEBOX_DATA_DIR, else /var/lib/fusebox for root, else
// $XDG_DATA_HOME/fusebox, else ~/.local/share/fusebox).
func Default() *Config {
	return defaults(os.LookupEnv, nil)
}

// DefaultHost returns a host with every default filled but the name and
// address.
func DefaultHost(name, address string) Host {
	return Host{Name: name, Address: address, Capacity: HostCapacityDefault, Weight: HostWeightDefault}
}

// DefaultAlertReceiver returns an alert receiver with every default filled
// but the name, URL and secret.
func DefaultAlertReceiver(name, url, secret string) AlertReceiver {
	return AlertReceiver{Name: name, URL: url, Secret: secret, Timeout: AlertReceiverTimeoutDefault}
}

// DefaultFailureRate returns the failure-rate settings an empty
// circuit_breaker.failure_rate section means.
func DefaultFailureRate() FailureRate {
	return FailureRate{Threshold: FailureRateThresholdDefault, Window: FailureRateWindowDefault, MinCalls: FailureRateMinCallsDefault}
}

// DefaultSlowCall returns the slow-call settings an empty
// circuit_breaker.slow_call section means.
func DefaultSlowCall() SlowCall {
	return SlowCall{Duration: SlowCallDurationDefault, Rate: SlowCallRateDefault, MinCalls: SlowCallMinCallsDefault}
}

// defaults builds the default configuration from the environment env (which
// is only read for DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH,
// FUSEBOX_DATA_DIR, XDG_DATA_HOME and HOME). src, if not nil, records which
// variable a default came from.
func defaults(env lookupFunc, src *sources) *Config {
	return &Config{
		Listen:   ListenDefault,
		DataDir:  defaultDataDir(env),
		Database: DatabaseDefault,
		LogLevel: LogLevelDefault,
		Hosts:    []Host{localHost(env, src)},
		CircuitBreaker: CircuitBreaker{
			Enabled:            BreakerEnabledDefault,
			FailureThreshold:   FailureThresholdDefault,
			RecoveryTimeout:    RecoveryTimeoutDefault,
			MaxRecoveryTimeout: MaxRecoveryTimeoutDefault,
			Jitter:             BreakerJitterDefault,
			HalfOpenTimeout:    HalfOpenTimeoutDefault,
			HalfOpenMaxProbes:  HalfOpenMaxProbesDefault,
			SuccessThreshold:   SuccessThresholdDefault,
			ProbeTimeout:       ProbeTimeoutDefault,
		},
		HealthCheck: HealthCheck{
			Interval:           HealthCheckIntervalDefault,
			Timeout:            HealthCheckTimeoutDefault,
			Jitter:             HealthCheckJitterDefault,
			HealthyThreshold:   HealthyThresholdDefault,
			UnhealthyThreshold: UnhealthyThresholdDefault,
			UnhealthyInterval:  HealthCheckUnhealthyIntervalDefault,
			BaseEjectionTime:   BaseEjectionTimeDefault,
			Canary:             Canary{Enabled: CanaryEnabledDefault, Interval: CanaryIntervalDefault},
		},
		Queue: Queue{MaxQueuedJobs: MaxQueuedJobsDefault},
		SpecLimits: SpecLimits{
			MaxSpecBytes:   SpecMaxSpecBytesDefault,
			MaxCommandArgs: SpecMaxCommandArgsDefault,
			MaxEnv:         SpecMaxEnvDefault,
			MaxLabels:      SpecMaxLabelsDefault,
			MaxArgBytes:    SpecMaxArgBytesDefault,
		},
		GracefulDegradation: GracefulDegradation{Enabled: DegradationEnabledDefault, MaxEjectedPercent: MaxEjectedPercentDefault},
		Retry: Retry{
			MaxAttempts: RetryMaxAttemptsDefault,
			Backoff:     RetryBackoffDefault,
			MaxBackoff:  RetryMaxBackoffDefault,
			Jitter:      RetryJitterDefault,
		},
		LostHost: LostHost{After: LostHostAfterDefault, Policy: LostHostPolicyDefault},
		Logs:     Logs{MaxBytes: LogsMaxBytesDefault},
		DockerTimeouts: DockerTimeouts{
			Ping:         DockerPingTimeoutDefault,
			Inspect:      DockerInspectTimeoutDefault,
			Create:       DockerCreateTimeoutDefault,
			Start:        DockerStartTimeoutDefault,
			Stop:         DockerStopTimeoutDefault,
			Remove:       DockerRemoveTimeoutDefault,
			List:         DockerListTimeoutDefault,
			ImageInspect: DockerImageInspectTimeoutDefault,
			ImageLoad:    DockerImageLoadTimeoutDefault,
			ImagePull:    DockerImagePullTimeoutDefault,
			Logs:         DockerLogsTimeoutDefault,
		},
		PollInterval:    PollIntervalDefault,
		StopGracePeriod: StopGracePeriodDefault,
		Retention:       RetentionDefault,
		API:             API{MaxFollowsPerToken: APIMaxFollowsPerTokenDefault, FollowStartTimeout: APIFollowStartTimeoutDefault},
		Workflows: Workflows{
			CacheTTL:         WorkflowsCacheTTLDefault,
			MaxArtifactBytes: WorkflowsMaxArtifactBytesDefault,
			MaxRunBytes:      WorkflowsMaxRunBytesDefault,
			CircuitBreaker: WorkflowsBreaker{
				FailureThreshold: WorkflowsFailureThresholdDefault,
				ResetTimeout:     WorkflowsResetTimeoutDefault,
				HalfOpenTimeout:  WorkflowsHalfOpenTimeoutDefault,
			},
		},
		Images: Images{
			Transfer:        ImagesTransferDefault,
			RegistryBreaker: RegistryBreaker{FailureThreshold: RegistryFailureThresholdDefault, ResetTimeout: RegistryResetTimeoutDefault},
		},
		Alerts: Alerts{
			RepeatInterval: AlertsRepeatIntervalDefault,
			QueueThreshold: AlertsQueueThresholdDefault,
			EvalInterval:   AlertsEvalIntervalDefault,
			DegradedFor:    AlertsDegradedForDefault,
			Backoff:        AlertsBackoffDefault,
			MaxBackoff:     AlertsMaxBackoffDefault,
		},
	}
}

// defaultDataDir is $FUSEBOX_DATA_DIR, else /var/lib/fusebox for root, else
// $XDG_DATA_HOME/fusebox, else $HOME/.local/share/fusebox, else
// /var/lib/fusebox.
func defaultDataDir(env lookupFunc) string {
	if d := env.get("FUSEBOX_DATA_DIR"); d != "" {
		return d
	}
	if geteuid() == 0 {
		return DataDirSystem
	}
	if d := env.get("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "fusebox")
	}
	if h := env.get("HOME"); h != "" {
		return filepath.Join(h, ".local", "share", "fusebox")
	}
	return DataDirSystem
}

// localHost is the default host: the engine DOCKER_HOST names (with TLS from
// DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, as the docker CLI does), else the
// local socket.
func localHost(env lookupFunc, src *sources) Host {
	addr := env.get("DOCKER_HOST")
	if addr == "" {
		return DefaultHost(LocalHostName, DockerHostDefault)
	}
	src.setEnv("hosts[0].address", "DOCKER_HOST")
	h := DefaultHost(LocalHostName, addr)
	tlsVerify := env.get("DOCKER_TLS_VERIFY") != ""
	if u, err := url.Parse(addr); err == nil && strings.EqualFold(u.Scheme, "tcp") && u.Host != "" {
		if u.Port() == "" {
			// The docker CLI's default ports.
			port := "2375"
			if tlsVerify {
				port = "2376"
			}
			u.Host = net.JoinHostPort(u.Hostname(), port)
			h.Address = u.String()
		}
		if tlsVerify {
			dir := env.get("DOCKER_CERT_PATH")
			if dir == "" {
				if home := env.get("HOME"); home != "" {
					dir = filepath.Join(home, ".docker")
				}
			}
			if dir != "" {
				h.TLS = &TLS{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem")}
			} else {
				h.TLS = &TLS{}
			}
			src.setEnv("hosts[0].tls", "DOCKER_TLS_VERIFY")
		}
	}
	return h
}

// DB returns the store to open: driver "sqlite" with the database file's path
// (<data_dir>/fusebox.db by default), or driver "postgres" with the URL as
// written. Validation refuses postgres until it is supported.
func (c *Config) DB() (driver, dsn string) {
	d := strings.TrimSpace(c.Database)
	switch {
	case d == "":
		return "sqlite", filepath.Join(c.DataDir, DatabaseFile)
	case hasScheme(d, "postgres"), hasScheme(d, "postgresql"):
		return "postgres", d
	}
	p := d
	if rest, ok := cutScheme(d, "sqlite"); ok {
		p = rest
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(c.DataDir, p)
	}
	return "sqlite", p
}

// SlogLevel returns LogLevel as a log/slog level (info when unset or unknown).
func (c *Config) SlogLevel() slog.Level {
	switch strings.ToLower(c.LogLevel) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Validate checks c as Load does, for a Config built or changed in code. The
// problems it returns carry field paths but no file positions.
func (c *Config) Validate() error {
	return problemsErr(validate(c, nil))
}

// hasScheme reports whether s starts with scheme:// (case-insensitively).
func hasScheme(s, scheme string) bool {
	_, ok := cutScheme(s, scheme)
	return ok
}

func cutScheme(s, scheme string) (string, bool) {
	p := scheme + "://"
	if len(s) >= len(p) && strings.EqualFold(s[:len(p)], p) {
		return s[len(p):], true
	}
	return "", false
}
