package mcpserver

import (
	"context"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"fusebox/internal/api"
)

// NoIn is the input of the tools that take none.
type NoIn struct {
	CallOptions
}

// HostsOut is the output of list_hosts.
type HostsOut struct {
	Hosts []Host `json:"hosts,omitempty"`
}

// HostNameIn is the input of get_host.
type HostNameIn struct {
	CallOptions
	Name string `json:"name" jsonschema:"the host's name (from list_hosts)"`
}

// HostOut is the output of get_host and the admin tools (the host after
// the action).
type HostOut struct {
	Host Host `json:"host"`
}

// BreakersOut is the output of list_breakers.
type BreakersOut struct {
	Breakers []Breaker `json:"breakers,omitempty"`
	Note     string    `json:"note,omitempty"`
}

// BreakerNameIn is the input of get_breaker.
type BreakerNameIn struct {
	CallOptions
	Name string `json:"name" jsonschema:"the breaker's name as list_breakers shows it (host/<host>, workflow/<workflow>), or a host's name"`
}

// BreakerOut is the output of get_breaker.
type BreakerOut struct {
	Breaker Breaker `json:"breaker"`
}

// HostActionIn is the input of the admin tools.
type HostActionIn struct {
	CallOptions
	Name   string `json:"name" jsonschema:"the host's name (from list_hosts)"`
	Reason string `json:"reason" jsonschema:"why, in one line: recorded with the action and your token's name, and shown with the host"`
}

func (s *server) addFleetTools() {
	register(s, tool{Tool: &mcp.Tool{Name: "list_hosts",
		Description: "List the fleet's Docker hosts: state, breaker state, jobs running, capacity, labels, last health check and the last operator action.",
		Annotations: readOnly("List hosts")}}, s.listHosts)
	register(s, tool{Tool: &mcp.Tool{Name: "get_host",
		Description: "Get one Docker host: state, breaker, load, labels, last error and the last operator action.",
		Annotations: readOnly("Get a host")}}, s.getHost)
	register(s, tool{Tool: &mcp.Tool{Name: "list_breakers",
		Description: "List circuit breakers and their state: each host's (an open one gets no jobs until a probe succeeds), " +
			"each workflow's that has been used (an open one refuses new runs with a retry-after) " +
			"and, over stdio, this client's own breaker in front of the fusebox server.",
		Annotations: readOnly("List circuit breakers")}}, s.listBreakers)
	register(s, tool{Tool: &mcp.Tool{Name: "get_breaker",
		Description: "Get one circuit breaker by name (host/<host> or a host's name, workflow/<workflow>, or this client's own): its state, failures in a row, trips and when it probes next.",
		Annotations: readOnly("Get a circuit breaker")}}, s.getBreaker)
}

func (s *server) addAdminTools() {
	register(s, tool{admin: true, Tool: &mcp.Tool{Name: "isolate_host",
		Description: "Take a host out: force its breaker open so that no job is placed on it until release_host or reset_breaker. Needs an admin token.",
		Annotations: writes("Isolate a host", true, true, false)}}, s.hostAction("isolate", s.b.Isolate))
	register(s, tool{admin: true, Tool: &mcp.Tool{Name: "release_host",
		Description: "Undo isolate_host or drain_host: the host takes jobs again. Needs an admin token.",
		Annotations: writes("Release a host", false, true, false)}}, s.hostAction("release", s.b.Release))
	register(s, tool{admin: true, Tool: &mcp.Tool{Name: "drain_host",
		Description: "Stop placing new jobs on a host; the jobs running there finish. Needs an admin token.",
		Annotations: writes("Drain a host", false, true, false)}}, s.hostAction("drain", s.b.Drain))
	register(s, tool{admin: true, Tool: &mcp.Tool{Name: "reset_breaker",
		Description: "Close a host's breaker and forget its failures (ending an isolation): jobs go to it again at once, without a probe. Needs an admin token.",
		Annotations: writes("Reset a host's breaker", true, true, false)}}, s.hostAction("reset", s.b.Reset))
}

func (s *server) listHosts(ctx context.Context, _ NoIn) (HostsOut, error) {
	hs, err := s.b.Hosts(ctx)
	if err != nil {
		return HostsOut{}, err
	}
	var out HostsOut
	for i := range hs {
		out.Hosts = append(out.Hosts, hostOf(&hs[i]))
	}
	return out, nil
}

func needName(name string) error {
	if strings.TrimSpace(name) == "" {
		return badArg("name", "is required: the host's name (list_hosts shows them)")
	}
	return nil
}

func (s *server) getHost(ctx context.Context, in HostNameIn) (HostOut, error) {
	if err := needName(in.Name); err != nil {
		return HostOut{}, err
	}
	h, err := s.b.Host(ctx, in.Name)
	if err != nil {
		return HostOut{}, err
	}
	return HostOut{Host: hostOf(h)}, nil
}

func (s *server) listBreakers(ctx context.Context, _ NoIn) (BreakersOut, error) {
	var out BreakersOut
	if br := s.opts.Breaker; br != nil {
		// This one first: it answers even when the server does not.
		sn := br.Snapshot()
		out.Breakers = append(out.Breakers, Breaker{Name: sn.Name, Kind: "mcp-client", State: sn.State.String(),
			ConsecutiveFailures: sn.ConsecutiveFailures, Trips: sn.Trips, Rejected: int64(sn.Totals.Rejected)})
	}
	bs, err := s.b.Breakers(ctx)
	if err != nil {
		return BreakersOut{}, err
	}
	for _, b := range bs {
		out.Breakers = append(out.Breakers, Breaker{Name: b.Name, Kind: b.Kind, State: b.State.String(),
			ConsecutiveFailures: b.ConsecutiveFailures, Trips: b.Trips, Rejected: b.Rejected,
			OpenedAt: timeText(b.OpenedAt), NextProbeAt: timeText(b.NextProbeAt)})
	}
	return out, nil
}

func (s *server) getBreaker(ctx context.Context, in BreakerNameIn) (BreakerOut, error) {
	if strings.TrimSpace(in.Name) == "" {
		return BreakerOut{}, badArg("name", "is required: a breaker's name (list_breakers shows them)")
	}
	all, err := s.listBreakers(ctx, NoIn{})
	if err != nil {
		return BreakerOut{}, err
	}
	var names []string
	for _, b := range all.Breakers {
		if b.Name == in.Name || b.Name == "host/"+in.Name {
			return BreakerOut{Breaker: b}, nil
		}
		names = append(names, b.Name)
	}
	return BreakerOut{}, badArg("name", "no breaker %q; there are %s", in.Name, strings.Join(names, ", "))
}

func (s *server) hostAction(action string, do func(context.Context, string, string) (*api.Host, error)) func(context.Context, HostActionIn) (HostOut, error) {
	return func(ctx context.Context, in HostActionIn) (HostOut, error) {
		if err := needName(in.Name); err != nil {
			return HostOut{}, err
		}
		if strings.TrimSpace(in.Reason) == "" {
			return HostOut{}, badArg("reason", "is required: say in one line why you %s host %s", action, in.Name)
		}
		h, err := do(ctx, in.Name, in.Reason)
		if err != nil {
			return HostOut{}, err
		}
		return HostOut{Host: hostOf(h)}, nil
	}
}
