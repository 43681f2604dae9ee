package systest

import (
	"strings"
	"time"
)

// Option changes how Boot starts a container.
type Option func(*config)

type config struct {
	bootTimeout time.Duration
	haltTimeout time.Duration
	execTimeout time.Duration
	archives    *string // nil: the image's shared cache; "": none
	nspawnArgs  []string
	noNetwork   bool
}

func defaultConfig() config {
	return config{
		bootTimeout: 60 * time.Second,
		haltTimeout: 20 * time.Second,
		execTimeout: 10 * time.Minute,
	}
}

// WithBootTimeout bounds the wait for systemd to finish booting (default 60 s).
func WithBootTimeout(d time.Duration) Option { return func(c *config) { c.bootTimeout = d } }

// WithHaltTimeout bounds the clean halt at teardown (default 20 s); after it, the machine is
// killed.
func WithHaltTimeout(d time.Duration) Option { return func(c *config) { c.haltTimeout = d } }

// WithExecTimeout bounds each Exec and MustExec (default 10 min). Whatever the bound, a command
// is killed early enough for the teardown to run before the test binary's -timeout.
func WithExecTimeout(d time.Duration) Option { return func(c *config) { c.execTimeout = d } }

// WithBind makes the host directory or file hostPath visible, writable, at containerPath.
func WithBind(hostPath, containerPath string) Option {
	return WithNspawnArgs("--bind=" + escapeColons(hostPath) + ":" + escapeColons(containerPath))
}

// WithBindRO makes the host directory or file hostPath visible, read-only, at containerPath.
func WithBindRO(hostPath, containerPath string) Option {
	return WithNspawnArgs("--bind-ro=" + escapeColons(hostPath) + ":" + escapeColons(containerPath))
}

// WithPrivateNetwork gives the container a network namespace with only a loopback interface:
// apt cannot reach the mirror (for testing the "no network" error). Its /etc/resolv.conf names
// 127.0.0.1, where nothing answers, so that lookups fail at once ("Temporary failure resolving")
// rather than after the resolver's timeouts (7 s for apt-get install).
func WithPrivateNetwork() Option {
	return func(c *config) {
		c.noNetwork = true
		c.nspawnArgs = append(c.nspawnArgs, "--private-network")
	}
}

// WithArchiveCache shares dir, instead of the image's cache ($SATCHEL_TEST_CACHE/apt-archives),
// as the lower layer of /var/cache/apt/archives: the container finds the .debs that are in dir
// already, and what it downloads is added to dir. A test that must see apt download uses a
// t.TempDir() of its own.
func WithArchiveCache(dir string) Option { return func(c *config) { c.archives = &dir } }

// WithoutArchiveCache leaves /var/cache/apt/archives as the image has it: empty, and private.
func WithoutArchiveCache() Option {
	return func(c *config) { none := ""; c.archives = &none }
}

// WithNspawnArgs passes more options to systemd-nspawn (before -b).
func WithNspawnArgs(args ...string) Option {
	return func(c *config) { c.nspawnArgs = append(c.nspawnArgs, args...) }
}

// escapeColons escapes what systemd-nspawn would take for a separator in --bind's paths.
func escapeColons(p string) string {
	return strings.NewReplacer(`\`, `\\`, ":", `\:`).Replace(p)
}
