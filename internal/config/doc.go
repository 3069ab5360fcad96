// Package config owns fusebox's configuration: the YAML file format, the
// FUSEBOX_* environment overrides, the defaults that make fusebox work with no
// file at all, and the validation that reports every problem with its file,
// line, column and field.
//
// It must not import other fusebox packages. Each package keeps its own typed
// settings; cmd/fusebox translates a Config into them. Durations are parsed
// here, once, at load; nothing downstream parses strings.
//
// # Sources, in order
//
//  1. Defaults (the ...Default constants). With no file fusebox uses the local
//     Docker engine (DOCKER_HOST, with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH
//     as the docker CLI reads them, else unix:///var/run/docker.sock) as the
//     only host, named "local", and SQLite at <data_dir>/fusebox.db. data_dir
//     is $FUSEBOX_DATA_DIR, else /var/lib/fusebox when running as root, else
//     $XDG_DATA_HOME/fusebox, else ~/.local/share/fusebox.
//  2. The file: one YAML document, a mapping of the keys below. Keys left out
//     keep their defaults, and so does a key written with no value (null).
//     Unknown keys are errors (with a "did you mean" when one is close), except
//     top-level keys starting with "x-", which are ignored so that they can
//     hold YAML anchors. Anchors, aliases and merge keys (<<) work.
//  3. The environment. Every scalar field can be set by FUSEBOX_ and its path
//     upper-cased with "_" for ".": FUSEBOX_LISTEN,
//     FUSEBOX_CIRCUIT_BREAKER_FAILURE_THRESHOLD, FUSEBOX_QUEUE_MAX_QUEUED_JOBS,
//     FUSEBOX_CIRCUIT_BREAKER_FAILURE_RATE_THRESHOLD (which turns failure_rate
//     on). Values are written as in the file (30s, 1MiB, true). An empty
//     variable counts as unset. FUSEBOX_HOSTS="h1=unix:///a.sock,h2=tcp://10.0.0.2:2375"
//     replaces the host list (each host with the default capacity and weight).
//     The old system's CIRCUIT_BREAKER_ENABLED, CIRCUIT_BREAKER_FAILURE_THRESHOLD,
//     CIRCUIT_BREAKER_RECOVERY_TIMEOUT and MAX_QUEUED_JOBS are accepted too; the
//     FUSEBOX_ variable wins when both are set. EnvNames lists them all.
//
// # The file
//
// examples/fusebox.yaml is the annotated reference; every key, with its
// default:
//
//	listen: 127.0.0.1:7070       # HTTP API, /metrics, /healthz: host:port
//	data_dir: ~/.local/share/fusebox   # see above
//	database: ""                 # "" = SQLite at <data_dir>/fusebox.db; sqlite:///path/x.db (a
//	                             # relative path is in data_dir); postgres://... is refused until supported
//	log_level: info              # debug | info | warn | error
//	hosts:                       # default: one host, "local" (see above); [] is an error
//	  - name: h1                 # required, unique, [a-z0-9][a-z0-9_.-]*, at most 63 characters
//	    address: unix:///var/run/docker.sock  # or tcp://host:port; each host a different engine
//	    tls:                     # only with tcp://; relative paths are relative to the file
//	      ca: ca.pem             # "" = system roots
//	      cert: cert.pem         # client certificate; cert and key together
//	      key: key.pem
//	      insecure_skip_verify: false
//	    labels: {zone: a}        # matched by job host constraints
//	    capacity: 4              # max concurrent jobs, >= 1
//	    weight: 1                # placement weight, > 0
//	    network_mode: ""         # network mode of job containers; "" = the engine's default
//	circuit_breaker:             # one breaker per host
//	  enabled: true              # false: breakers are "disabled" (always closed, still recording)
//	  failure_threshold: 5       # consecutive host faults that trip it, >= 1
//	  recovery_timeout: 60s      # base open time, > 0; old name reset_timeout (not both)
//	  max_recovery_timeout: 10m  # cap on the growing open time, >= recovery_timeout
//	  jitter: 0.1                # fraction of the open time, 0..1
//	  half_open_timeout: 30s     # quiet period in half-open with no failure that closes it, > 0
//	  half_open_max_probes: 1    # concurrent probes in half-open, >= 1
//	  success_threshold: 1       # successes in half-open that close it, >= 1
//	  probe_timeout: 2m          # a probe that never reports frees its slot after this, > 0
//	  failure_rate:              # optional; left out (or null) = off; {} = on with these defaults
//	    threshold: 0.5           # share of failed calls that trips, 0 < x <= 1
//	    window: 60s              # rolling window, > 0
//	    min_calls: 20            # calls in the window before the rate counts, >= 1
//	  slow_call:                 # optional; left out (or null) = off; {} = on with these defaults
//	    duration: 5s             # a call slower than this is slow, > 0
//	    rate: 0.8                # share of slow calls that trips, 0 < x <= 1
//	    min_calls: 20            # >= 1
//	health_check:                # an ejection rule apart from failure_threshold (real calls)
//	  interval: 1s               # > 0
//	  timeout: 1s                # ping deadline, > 0, <= interval
//	  jitter: 0.2                # fraction of the intervals, 0..1
//	  healthy_threshold: 2       # passes in a row that make a host healthy, >= 1
//	  unhealthy_threshold: 2     # failures in a row that eject it (open its breaker), >= 1
//	  unhealthy_interval: 250ms  # between checks after a failed one, > 0, <= interval
//	  base_ejection_time: 5s     # open time of an ejection × trips in a row, > 0,
//	                             # capped by circuit_breaker.max_recovery_timeout
//	  canary:                    # start a container now and then to prove the host can
//	    enabled: false
//	    image: ""                # required when enabled
//	    interval: 5m             # > 0
//	queue:
//	  max_queued_jobs: 1000      # >= 1; old name: top-level max_queued_jobs (not both)
//	spec_limits:                 # bounds of one job spec; a spec past them is refused at submit
//	  max_spec_bytes: 64KiB      # the whole spec as JSON, 1B..16MiB
//	  max_command_args: 1024     # >= 1
//	  max_env: 256               # environment variables, >= 1
//	  max_labels: 64             # labels, and constraints, each, >= 1
//	  max_arg_bytes: 32KiB       # each command argument, env entry (NAME=value), label and
//	                             # constraint (key=value), 1B..max_spec_bytes
//	graceful_degradation:
//	  enabled: true              # queue instead of failing when no host can take a job,
//	                             # defer log collection, stretch status polls, cap ejections; false: none
//	  max_ejected_percent: 50    # most hosts ejected at once on slowness alone (checks timing out), 0..100; the last host in is never ejected for slowness
//	retry:                       # default per job; a job may override it
//	  max_attempts: 3            # >= 1
//	  backoff: 1s                # first backoff, > 0
//	  max_backoff: 1m            # >= backoff
//	  jitter: 0.2                # 0..1
//	lost_host:
//	  after: 5m                  # a job whose host stays unreachable this long, > 0 ...
//	  policy: reschedule         # ... is run again elsewhere (reschedule) or marked lost (lost)
//	logs:
//	  max_bytes: 1MiB            # cap per stream; bytes, or B, KiB, MiB, GiB, TiB, KB, MB, GB, TB
//	docker_timeouts:             # deadline of each Docker API call, each > 0
//	  ping: 2s
//	  inspect: 5s
//	  create: 30s
//	  start: 30s
//	  stop: 30s
//	  remove: 30s
//	  list: 10s
//	  image_inspect: 5s
//	  image_load: 5m
//	  image_pull: 10m
//	  logs: 30s
//	poll_interval: 2s            # status polling while the event stream is down, > 0
//	stop_grace_period: 10s       # SIGTERM, then SIGKILL after this; >= 0 (0 kills at once)
//	retention: 168h              # finished jobs (transitions, attempts, logs) deleted this long after they end; >= 0 (0 keeps them)
//	auth:
//	  tokens:                    # none: the API is open and listens on loopback only
//	    - name: ci               # who holds it, for logs
//	      token: "..."           # >= 16 characters, sent as "Authorization: Bearer ..."
//	      role: submit           # read | submit | admin
//	api:                         # beyond loopback: TLS (or insecure_http) and tokens
//	  tls:                       # serve HTTPS; both files, or neither; read again when they change
//	    cert: ""                 # server certificate (with its chain), PEM; relative to the file
//	    key: ""                  # its private key, PEM
//	  insecure_http: false       # true: plain HTTP beyond loopback (a proxy terminates TLS)
//	  max_follows_per_token: 8   # log follows one token has open at once (>= 1); the next gets 429
//	  follow_start_timeout: 10m  # a follow of a job queued or launching this long ends (> 0)
//	workflows:                   # multi-step workflows (fusebox workflow run)
//	  cache_ttl: 168h            # a cached step result is reused this long (> 0)
//	  max_artifact_bytes: 1GiB   # each step output, as a tar (artifacts live in data_dir/artifacts)
//	  max_run_bytes: 10GiB       # all the outputs of one run together (>= max_artifact_bytes); past it the run fails
//	  circuit_breaker:           # each workflow's default breaker; a definition's circuit_breaker overrides it
//	    failure_threshold: 5     # failed runs in a row (their own failures, not the fleet's) that open it (>= 1)
//	    reset_timeout: 1m        # open this long, then one probe run goes through (> 0)
//	    half_open_timeout: 1h    # a probe run not ended this long frees its slot (> 0)
//	mcp:                         # the MCP server at /mcp (tools for AI agents; fusebox mcp for stdio)
//	  read_only: false           # true: only the tools annotated read-only are offered
//	alerts:                      # operator alerts as Alertmanager webhooks, signed per Standard Webhooks
//	  repeat_interval: 4h        # a still-firing alert is sent again this long after the last time, > 0
//	  queue_threshold: 0.8       # FuseboxQueueNearlyFull from this share of max_queued_jobs, 0 < x <= 1
//	  eval_interval: 5s          # conditions are checked this often besides on every event, > 0
//	  degraded_for: 1m           # a host degraded this long fires FuseboxHostDegraded (as a rule's for:), > 0
//	  backoff: 1s                # first retry delay of a failed delivery (doubling, full jitter), > 0
//	  max_backoff: 5m            # >= backoff
//	  external_url: ""           # fusebox's URL as receivers reach it (externalURL, generatorURL)
//	  receivers:                 # none: alerts are evaluated and logged, sent nowhere
//	    - name: ops              # required, unique: letters, digits, _ . -
//	      url: https://alerts.example.com/fusebox   # http:// or https://
//	      secret: whsec_...      # "whsec_" + base64 of a 24..64-byte key; in the file only (no variable)
//	      timeout: 5s            # of one attempt, > 0
//	images:                      # how images reach the hosts (internal/image)
//	  transfer: true             # stream a job's missing image from a host that has it
//	  docker_config: ""          # docker login's config.json ("" = $DOCKER_CONFIG/config.json or ~/.docker/config.json)
//	  registry_breaker:          # the breaker of each registry, registry/<host>
//	    failure_threshold: 3     # pulls in a row that found it out that open it (>= 1)
//	    reset_timeout: 10s       # open this long before a pull probes it (> 0)
//	registries:                  # credentials per registry, never logged or shown
//	  - host: ghcr.io            # as image references name it
//	    username: ci             # with one of password, password_file, password_env
//	    password: ""             # or password_file: a path, or password_env: a variable's name
//	    identity_token: ""       # instead of a username and password
//	    identity_token_file: ""  # or read from this file
//	    identity_token_env: ""   # or from this environment variable
//
// Durations are Go durations with a unit ("30s", "1m30s", "500ms"); a bare
// number other than 0 is refused, so that "30" is never read as 30ns.
// Numbers, booleans and strings must have their own YAML types: "4" (quoted)
// is not a capacity, and yes is not true.
//
// # Problems
//
// Load, Parse and Validate return Problems, every problem found, each
// formatted as
//
//	fusebox.yaml:14:15: hosts[1].capacity: must be at least 1 (got -2)
//	$FUSEBOX_QUEUE_MAX_QUEUED_JOBS: queue.max_queued_jobs: must be a whole number (got "many")
//
// Check returns the same list for `fusebox config check`.
package config
