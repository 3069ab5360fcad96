package config

import "testing"

func TestSpecLimits(t *testing.T) {
	c := mustParse(t, "spec_limits:\n  max_spec_bytes: 1MiB\n  max_command_args: 10\n  max_env: 5\n  max_labels: 3\n  max_arg_bytes: 4KiB\n", nil)
	want := SpecLimits{MaxSpecBytes: 1 << 20, MaxCommandArgs: 10, MaxEnv: 5, MaxLabels: 3, MaxArgBytes: 4 << 10}
	if c.SpecLimits != want {
		t.Fatalf("got %+v, want %+v", c.SpecLimits, want)
	}
	c = mustParse(t, "spec_limits:\n  max_env: 5\n", map[string]string{"FUSEBOX_SPEC_LIMITS_MAX_ARG_BYTES": "1KiB"})
	if c.SpecLimits.MaxEnv != 5 || c.SpecLimits.MaxArgBytes != 1<<10 || c.SpecLimits.MaxSpecBytes != SpecMaxSpecBytesDefault {
		t.Fatalf("partial section and env: %+v", c.SpecLimits)
	}
	for _, tt := range []problemCase{
		{"spec bytes 0", "spec_limits:\n  max_spec_bytes: 0\n", 2, "spec_limits.max_spec_bytes", "at least 1 byte"},
		{"spec bytes huge", "spec_limits:\n  max_spec_bytes: 1GiB\n", 2, "spec_limits.max_spec_bytes", "at most 16MiB"},
		{"args 0", "spec_limits:\n  max_command_args: 0\n", 2, "spec_limits.max_command_args", "at least 1"},
		{"env negative", "spec_limits:\n  max_env: -1\n", 2, "spec_limits.max_env", "at least 1"},
		{"labels 0", "spec_limits:\n  max_labels: 0\n", 2, "spec_limits.max_labels", "at least 1"},
		{"arg bytes 0", "spec_limits:\n  max_arg_bytes: 0\n", 2, "spec_limits.max_arg_bytes", "at least 1 byte"},
		{"arg bytes over spec", "spec_limits:\n  max_spec_bytes: 1KiB\n  max_arg_bytes: 2KiB\n", 3, "spec_limits.max_arg_bytes", "at most spec_limits.max_spec_bytes"},
		{"arg bytes word", "spec_limits:\n  max_arg_bytes: lots\n", 2, "spec_limits.max_arg_bytes", "must be a size like"},
		{"unknown key", "spec_limits:\n  max_envs: 3\n", 2, "spec_limits.max_envs", "did you mean max_env"},
	} {
		t.Run(tt.name, func(t *testing.T) { tt.check(t, nil) })
	}
}
