package resource

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/satchelcm/satchel/internal/schema"
)

// Group manages a group in the root's /etc/group (and /etc/gshadow) through groupadd,
// groupmod and groupdel.
//
// The state is read from the files themselves, never through NSS, so a --root image build
// sees the image's groups. Changing a group's gid does not change the group of files that
// carry the old one (as with groupmod): chown them, or give the gid from the start.
type Group struct {
	base
	Name   string `attr:"name" namevar:"true" doc:"The group name (default: the resource's name)."`
	Ensure string `attr:"ensure" default:"present" enum:"present,absent" doc:"present: the group exists; absent: it is removed (an error while it is some user's primary group)."`
	GID    *int   `attr:"gid" doc:"The group id. Unset: groupadd picks a free one, and an existing group keeps its own."`
	System bool   `attr:"system" default:"false" doc:"Create a system group (its gid picked from the system range of /etc/login.defs). Only matters when the group is created."`
}

var groupDef = definition{
	name:       "group",
	doc:        "A group in /etc/group, with its gid; created, changed or removed with groupadd, groupmod and groupdel.",
	proto:      (*Group)(nil),
	uniqueAttr: "name",
	check: func(v schema.Values) []*schema.AttrError {
		if name, ok := v["name"].(string); ok {
			if why := checkAccountName(name); why != "" {
				return []*schema.AttrError{{Attr: "name", Summary: "Invalid group name", Detail: why}}
			}
		}
		if _, _, ok := wholeID(v["gid"]); !ok {
			return []*schema.AttrError{{Attr: "gid", Summary: "Invalid gid", Detail: "a gid is a whole number from 0 to 4294967294."}}
		}
		return nil
	},
}

// CheckApply implements Resource.
func (g *Group) CheckApply(ctx context.Context, env *Env, apply bool) (*Result, error) {
	res := &Result{}
	db, err := readAccountDB(env, false)
	if err != nil {
		return res, err
	}
	cur := db.group(g.Name)
	var argv []string
	var what string
	switch {
	case g.Ensure == "absent":
		if cur == nil {
			return res, nil
		}
		if users := db.primaryOf(cur.gid); len(users) > 0 {
			why := fmt.Sprintf("it is the primary group of user %s", strings.Join(users, ", "))
			res.Add("ensure", "present", "absent"+planNote(why))
			if apply {
				return res, fmt.Errorf("cannot remove group %s: %s; remove that user or give it another primary group first (and make this group require that user resource)", g.Name, why)
			}
			return res, nil
		}
		res.Add("ensure", "present", "absent")
		argv, what = []string{"groupdel", g.Name}, "remove group "+g.Name
	case cur == nil:
		to := "present"
		argv, what = []string{"groupadd"}, "create group "+g.Name
		if g.GID != nil {
			argv = append(argv, "--gid", strconv.Itoa(*g.GID))
			to += planNote(g.gidTaken(db, *g.GID))
		}
		if g.System {
			argv = append(argv, "--system")
		}
		argv = append(argv, g.Name)
		res.Add("ensure", "absent", to)
	case g.GID != nil && cur.gid != *g.GID:
		res.Add("gid", strconv.Itoa(cur.gid), strconv.Itoa(*g.GID)+planNote(g.gidTaken(db, *g.GID)))
		argv, what = []string{"groupmod", "--gid", strconv.Itoa(*g.GID), g.Name}, "change group "+g.Name
	}
	if !apply || argv == nil {
		return res, nil
	}
	defer invalidateAccounts(env)
	return res, accountTool(ctx, env, what, argv, "")
}

// gidTaken says which other group has gid, or "".
func (g *Group) gidTaken(db *accountDB, gid int) string {
	if other := db.groupByGID(gid); other != nil && other.name != g.Name {
		return fmt.Sprintf("gid %d is taken by group %s", gid, other.name)
	}
	return ""
}

// planNote explains, in a plan, why applying a change will fail unless an earlier resource
// of the run changes the accounts first (a plan cannot know: it changes nothing). It is ""
// when there is nothing to explain.
func planNote(why string) string {
	if why == "" {
		return ""
	}
	return " (" + why + " now: applying fails unless a resource this one requires changes that first)"
}

// Serial implements resource.Serial: the shadow tools lock the account files, and one
// resource's view of them must not change under it.
func (g *Group) Serial() {}

// String names the group for messages.
func (g *Group) String() string { return "group " + g.Name }

var (
	_ Resource = (*Group)(nil)
	_ Serial   = (*Group)(nil)
)
