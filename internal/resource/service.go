package resource

import (
	"context"
	"fmt"
	"strings"

	"github.com/satchelcm/satchel/internal/schema"
)

// Service manages a systemd unit: whether it runs, whether it starts at boot, and what a
// notification does to it.
//
// State is read with one `systemctl show` per service and changed with systemctl start,
// stop, enable and disable. If a unit file changed earlier in the run (a file resource wrote
// it, a package installed it), the service first runs `systemctl daemon-reload`, once for
// however many files changed, so that systemd acts on the new unit.
//
// When systemd is not running (an image built with --root, a container without systemd as
// PID 1), enabled still works through `systemctl --root`, which only edits the .wants links;
// running is then not applicable: the result carries a note, neither a change nor an error.
// Under --root the host's own systemd is never touched.
type Service struct {
	base
	Name      string `attr:"name" namevar:"true" doc:"The unit: \"squid\" means squid.service; a name with another suffix (.socket, .timer, .mount…) names that unit (default: the resource's name)."`
	Running   *bool  `attr:"running" doc:"true: started if it is not running; false: stopped if it is. Unset: not managed. Not applicable (a note, not an error) when systemd is not running or under --root."`
	Enabled   *bool  `attr:"enabled" doc:"true: started at boot (systemctl enable); false: not (systemctl disable). Unset: not managed. Works without a running systemd and under --root."`
	OnRefresh string `attr:"on_refresh" default:"restart" enum:"restart,reload,try-restart" doc:"What a notification does to a running service: restart it, reload its configuration (the unit must support reloading) or try-restart. A stopped service stays stopped, and one this run has just started is not restarted again."`

	changedRunning bool // CheckApply started or stopped the unit (under no-op: would have)
}

var serviceDef = definition{
	name:       "service",
	doc:        "A systemd service (or other unit): running or stopped, enabled at boot or not, restarted or reloaded when notified; daemon-reload comes first when a unit file changed in the run.",
	proto:      (*Service)(nil),
	uniqueAttr: "name",
	check: func(v schema.Values) []*schema.AttrError {
		if name, ok := v["name"].(string); ok {
			if err := checkUnitName(name); err != nil {
				return []*schema.AttrError{{Attr: "name", Summary: "Invalid unit name", Detail: err.Error() + "."}}
			}
		}
		return nil
	},
}

// unit returns the full unit name.
func (s *Service) unit() string {
	if hasUnitSuffix(s.Name) {
		return s.Name
	}
	return s.Name + ".service"
}

// CheckApply implements Resource.
func (s *Service) CheckApply(ctx context.Context, env *Env, apply bool) (*Result, error) {
	res := &Result{}
	sd := newSystemd(env)
	unit := s.unit()
	if err := sd.reloadIfChanged(ctx, env, res, apply, unit); err != nil {
		return res, err
	}
	st, err := sd.state(ctx, unit)
	if err != nil {
		return res, err
	}
	switch st.Load {
	case "not-found":
		return res, s.notFound(sd, unit, res, apply)
	case "loaded", "masked":
	default:
		msg := strings.TrimSuffix(st.LoadError, ".")
		if msg == "" {
			msg = "load state " + st.Load
		}
		return res, fmt.Errorf("%s cannot be loaded: %s; check its unit file with systemd-analyze verify %s", unit, msg, unit)
	}

	if s.Running != nil {
		switch want := *s.Running; {
		case !sd.online:
			res.Note("running: %s", sd.offlineReason())
		case want && st.Load == "masked":
			return res, fmt.Errorf("%s is masked, so it cannot be started; unmask it (systemctl unmask %s) or stop managing it", unit, unit)
		case want && !st.running():
			if err := s.change(ctx, sd, res, apply, "running", "false", "true", "start", unit); err != nil {
				return res, err
			}
		case !want && !st.stopped():
			if err := s.change(ctx, sd, res, apply, "running", "true", "false", "stop", unit); err != nil {
				return res, err
			}
		}
	}

	if s.Enabled != nil {
		enabled, err := isEnabled(unit, st.File, *s.Enabled)
		if err != nil {
			return res, err
		}
		if enabled != *s.Enabled {
			verb := map[bool]string{true: "enable", false: "disable"}[*s.Enabled]
			if err := s.change(ctx, sd, res, apply, "enabled", fmt.Sprint(enabled), fmt.Sprint(*s.Enabled), verb, unit); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

// change records one change and, when applying, makes it with `systemctl VERB UNIT`.
func (s *Service) change(ctx context.Context, sd systemd, res *Result, apply bool, attr, from, to, verb, unit string) error {
	res.Add(attr, from, to)
	if attr == "running" {
		s.changedRunning = true // under no-op too, so a plan reports no restart after a start
	}
	if !apply {
		return nil
	}
	return sd.do(ctx, verb, "--", unit)
}

// notFound handles a unit systemd does not know. Applying, that is an error. A plan only
// notes it: a package or file resource earlier in the run may be about to install the unit.
func (s *Service) notFound(sd systemd, unit string, res *Result, apply bool) error {
	where := "/etc/systemd/system or /lib/systemd/system"
	if sd.root != "/" {
		where += " under " + sd.root
	}
	if apply {
		return fmt.Errorf("service %s: no unit %s is installed (no unit file in %s); install the package that provides it, or write the unit with a file resource, and require that resource", s.Name, unit, where)
	}
	res.Note("%s does not exist yet (no unit file in %s): a resource earlier in the run may install it", unit, where)
	const missing = "(no such unit)"
	if s.Running != nil && *s.Running {
		if sd.online {
			res.Add("running", missing, "true")
			s.changedRunning = true
		} else {
			res.Note("running: %s", sd.offlineReason())
		}
	}
	if s.Enabled != nil && *s.Enabled {
		res.Add("enabled", missing, "true")
	}
	return nil
}

// Refresh implements Refresher: restart (reload, try-restart) the service if it runs and this
// run has not just started or stopped it.
func (s *Service) Refresh(ctx context.Context, env *Env, apply bool) (*Result, error) {
	res := &Result{}
	if s.changedRunning || (s.Running != nil && !*s.Running) {
		return res, nil
	}
	sd := newSystemd(env)
	unit := s.unit()
	if !sd.online {
		res.Note("%s on notification: %s", s.OnRefresh, sd.offlineReason())
		return res, nil
	}
	st, err := sd.state(ctx, unit)
	if err != nil {
		return res, err
	}
	if !st.running() {
		return res, nil // nothing to restart: the new configuration is read when it starts
	}
	res.Add("refresh", "", s.OnRefresh)
	if !apply {
		return res, nil
	}
	return res, sd.do(ctx, s.OnRefresh, "--", unit)
}

// Serial implements resource.Serial: one systemctl at a time, and daemon-reload before
// whatever comes next.
func (s *Service) Serial() {}

var (
	_ Resource  = (*Service)(nil)
	_ Refresher = (*Service)(nil)
	_ Serial    = (*Service)(nil)
)
