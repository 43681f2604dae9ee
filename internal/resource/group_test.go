package resource_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/satchelcm/satchel/internal/resource"
)

func TestGroupCreateChangeRemove(t *testing.T) {
	t.Parallel()
	a := newAccounts(t)
	a.contract(group("teachers", map[string]any{"gid": 2000}), "ensure: absent -> present")
	if got := a.entry("/etc/group", "teachers"); got != "teachers:x:2000:" {
		t.Errorf("/etc/group: %q", got)
	}
	if got := a.entry("/etc/gshadow", "teachers"); !strings.HasPrefix(got, "teachers:") {
		t.Errorf("/etc/gshadow: %q", got)
	}
	if gid, err := a.env.Accounts.GID("teachers"); err != nil || gid != 2000 {
		t.Errorf("Accounts.GID(teachers) = %d, %v; want 2000 (the resolver must re-read /etc/group)", gid, err)
	}

	// Without a gid groupadd picks one (after the highest in use); an existing group keeps
	// its own.
	a.contract(group("staff", map[string]any{}), "ensure: absent -> present")
	if got := a.entry("/etc/group", "staff"); got != "staff:x:2001:" {
		t.Errorf("/etc/group: %q", got)
	}
	a.contract(group("teachers", map[string]any{}))

	// A new gid; groupmod also moves the accounts whose primary group it is.
	a.apply(user("alice", map[string]any{"group": "teachers", "uid": 1500, "manage_home": false}))
	a.contract(group("teachers", map[string]any{"gid": 2005}), "gid: 2000 -> 2005")
	if got := a.entry("/etc/group", "teachers"); got != "teachers:x:2005:" {
		t.Errorf("/etc/group: %q", got)
	}
	if got := a.entry("/etc/passwd", "alice"); got != "alice:x:1500:2005::/home/alice:/bin/sh" {
		t.Errorf("/etc/passwd: %q", got)
	}
	if gid, err := a.env.Accounts.GID("teachers"); err != nil || gid != 2005 {
		t.Errorf("Accounts.GID(teachers) = %d, %v; want 2005", gid, err)
	}

	// Absent: removed from /etc/group and /etc/gshadow; then nothing to do.
	a.contract(group("staff", map[string]any{"ensure": "absent"}), "ensure: present -> absent")
	if a.entry("/etc/group", "staff") != "" || a.entry("/etc/gshadow", "staff") != "" {
		t.Error("staff is still there")
	}
	a.contract(group("staff", map[string]any{"ensure": "absent"}))
	if _, err := a.env.Accounts.GID("staff"); err == nil {
		t.Error("Accounts still resolves staff")
	}
}

func TestGroupPrimaryOfAUser(t *testing.T) {
	t.Parallel()
	a := newAccounts(t)
	a.apply(group("teachers", map[string]any{"gid": 2000}))
	a.apply(user("alice", map[string]any{"group": "teachers", "manage_home": false}))
	cr := group("teachers", map[string]any{"ensure": "absent"})
	before := a.snapshot()
	// A plan cannot know whether the user is changed first: it says what stands in the way.
	res := a.run(cr, false)
	assertChanges(t, "plan", res, "ensure: present -> absent (it is the primary group of user alice now: applying fails unless a resource this one requires changes that first)")
	_, err := a.runErr(cr, true)
	if want := "cannot remove group teachers: it is the primary group of user alice; remove that user or give it another primary group first (and make this group require that user resource)"; err.Error() != want {
		t.Errorf("error\n  %v\nwant\n  %s", err, want)
	}
	a.assertUnchanged(before, "failed removal")
	// Once the user is gone, the group goes.
	a.apply(user("alice", map[string]any{"ensure": "absent"}))
	a.contract(cr, "ensure: present -> absent")
}

func TestGroupGIDTaken(t *testing.T) {
	t.Parallel()
	a := newAccounts(t)
	a.apply(group("teachers", map[string]any{"gid": 2000}))
	a.apply(group("staff", map[string]any{"gid": 2001}))
	res := a.run(group("staff", map[string]any{"gid": 2000}), false)
	assertChanges(t, "plan", res, "gid: 2001 -> 2000 (gid 2000 is taken by group teachers now: applying fails unless a resource this one requires changes that first)")
	_, err := a.runErr(group("staff", map[string]any{"gid": 2000}), true)
	if want := "change group staff: groupmod: GID '2000' already exists (exit status 4)"; err.Error() != want {
		t.Errorf("error\n  %v\nwant\n  %s", err, want)
	}
	_, err = a.runErr(group("web", map[string]any{"gid": 100}), true)
	if want := "create group web: groupadd: GID '100' already exists (exit status 4)"; err.Error() != want {
		t.Errorf("error\n  %v\nwant\n  %s", err, want)
	}
	if a.entry("/etc/group", "web") != "" || a.entry("/etc/group", "staff") != "staff:x:2001:" {
		t.Error("a failed change changed /etc/group")
	}
}

func TestGroupSystem(t *testing.T) {
	t.Parallel()
	a := newAccounts(t)
	a.contract(group("squid", map[string]any{"system": true}), "ensure: absent -> present")
	f := strings.Split(a.entry("/etc/group", "squid"), ":")
	if len(f) != 4 {
		t.Fatalf("/etc/group: %q", f)
	}
	if gid, err := strconv.Atoi(f[2]); err != nil || gid < 100 || gid > 999 {
		t.Errorf("system group gid %q, want one from the system range 100-999", f[2])
	}
	// system only chooses the range at creation; an existing group is left as it is.
	a.contract(group("users", map[string]any{"system": true}))
}

func TestGroupDecode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		attrs map[string]any
		want  string
	}{
		{map[string]any{"name": "a:b"}, `name: Invalid group name: "a:b" is not a valid name: letters, digits, _ . and -, at most 32 characters, not starting with - or . (an optional final $ for machine accounts).`},
		{map[string]any{"name": "100"}, `name: Invalid group name: "100" is a number; names must not be (the tools would read it as an id).`},
		{map[string]any{"gid": -5}, "gid: Invalid gid: a gid is a whole number from 0 to 4294967294."},
		{map[string]any{"gid": 4294967295}, "gid: Invalid gid: a gid is a whole number from 0 to 4294967294."},
		{map[string]any{"ensure": "gone"}, `ensure: Invalid value: "gone" is not one of "present", "absent".`},
	} {
		_, err := resource.New(cat("group", "x", tc.attrs))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%v: error\n  %v\nwant\n  %s", tc.attrs, err, tc.want)
		}
	}
	g := build(t, cat("group", "teachers", map[string]any{})).(*resource.Group)
	if g.Name != "teachers" || g.Ensure != "present" || g.GID != nil || g.System {
		t.Errorf("group decoded as %+v", g)
	}
	s := resource.Lookup("group").Schema
	if s.UniqueAttr != "name" || !s.Attribute("name").NameVar {
		t.Errorf("group schema: unique %q", s.UniqueAttr)
	}
}
