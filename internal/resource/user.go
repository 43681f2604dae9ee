package resource

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/satchelcm/satchel/internal/schema"
)

// User manages an account in the root's /etc/passwd, /etc/shadow and /etc/group through
// useradd, usermod, userdel and chpasswd, and optionally its home directory and its SSH
// authorized keys.
//
// The state is read from the files themselves, never through NSS, so a --root image build
// sees the image's accounts. Every change to the account is one tool call (useradd or
// usermod with all the options), so a failure leaves it as it was; the password goes to
// chpasswd on its standard input, never on a command line (which ps shows). Attributes left
// unset are not managed: useradd's defaults apply when the account is created, and an
// existing account keeps what it has.
//
// A user whose primary or supplementary groups are managed by group resources must come
// after them: require = [group.teachers].
type User struct {
	base
	Name              string   `attr:"name" namevar:"true" doc:"The login name (default: the resource's name)."`
	Ensure            string   `attr:"ensure" default:"present" enum:"present,absent" doc:"present: the account exists; absent: it is removed with userdel (its home too only if remove_home is set)."`
	UID               *int     `attr:"uid" doc:"The user id. Unset: useradd picks a free one, and an existing account keeps its own. Changing it re-owns the files in the home directory that had the old one, as usermod does."`
	Group             *string  `attr:"group" format:"account" refers:"group" doc:"The primary group, by name or gid; it must exist. Unset: a group named after the user if there is one, else useradd's default (on Debian, a new group named after the user); an existing account keeps its own."`
	Groups            []string `attr:"groups" refers:"group" doc:"The supplementary groups, by name or gid: exactly these (an empty list: none). Unset: not managed."`
	Home              *string  `attr:"home" format:"path" doc:"The home directory. Unset: HOME of /etc/default/useradd followed by the name (/home/NAME), and an existing account keeps its own. Changing it moves the old home's content, as usermod --move-home does, when manage_home is set and nothing is at the new path yet."`
	ManageHome        bool     `attr:"manage_home" default:"true" doc:"Make sure the home exists, is a directory, and is owned by the user and their primary group; it is created from /etc/skel (SKEL of /etc/default/useradd) with useradd's mode (HOME_MODE or UMASK of /etc/login.defs). A home of /nonexistent is never created; the home of a system account (uid outside UID_MIN..UID_MAX, or system = true) is managed only when home is given, as it is usually a system directory (daemon's /usr/sbin, www-data's /var/www)."`
	Shell             *string  `attr:"shell" format:"path" doc:"The login shell, e.g. \"/bin/bash\" or \"/usr/sbin/nologin\". Unset: useradd's default, and an existing account keeps its own."`
	System            bool     `attr:"system" default:"false" doc:"Create a system account (uid from the system range of /etc/login.defs, no password ageing). Only matters when the account is created."`
	Comment           *string  `attr:"comment" doc:"The comment (GECOS) field, usually the person's full name. Unset: not managed."`
	Password          *string  `attr:"password" sensitive:"true" doc:"The password field of /etc/shadow, always secret: a crypt(3) hash such as \"$y$j9T$…\" (mkpasswd -m yescrypt), or \"!\" or \"*\" for an account nobody can log in to with a password. Unset: not managed."`
	SSHAuthorizedKeys []string `attr:"ssh_authorized_keys" doc:"Exactly these lines in HOME/.ssh/authorized_keys (mode 0600 in a 0700 .ssh, both owned by the user); an empty list empties an existing file. Unset: not managed."`
	RemoveHome        bool     `attr:"remove_home" default:"false" doc:"With ensure = \"absent\": remove the home directory and its content too (userdel --remove). Without it the home is kept."`
}

var userDef = definition{
	name:       "user",
	doc:        "A user account with its uid, groups, home directory, shell, password hash and SSH authorized keys; managed with useradd, usermod, userdel and chpasswd.",
	proto:      (*User)(nil),
	uniqueAttr: "name",
	check:      checkUser,
}

func checkUser(v schema.Values) []*schema.AttrError {
	bad := func(attr, summary, detail string) []*schema.AttrError {
		return []*schema.AttrError{{Attr: attr, Summary: summary, Detail: detail}}
	}
	if name, ok := v["name"].(string); ok {
		if why := checkAccountName(name); why != "" {
			return bad("name", "Invalid user name", why)
		}
	}
	if _, _, ok := wholeID(v["uid"]); !ok {
		return bad("uid", "Invalid uid", "a uid is a whole number from 0 to 4294967294.")
	}
	if groups, ok := v["groups"].([]string); ok {
		for _, g := range groups {
			if _, err := strconv.Atoi(g); err != nil && checkAccountName(g) != "" {
				return bad("groups", "Invalid group", fmt.Sprintf("%q is neither a group name nor a gid.", g))
			}
		}
	}
	for _, attr := range []string{"comment", "home", "shell"} {
		if s, ok := v[attr].(string); ok && strings.ContainsAny(s, ":\n") {
			return bad(attr, "Invalid "+attr, fmt.Sprintf("%s must not contain \":\" or a newline (they separate the fields of /etc/passwd).", attr))
		}
	}
	if pw, ok := v["password"].(string); ok {
		switch {
		case pw == "":
			return bad("password", "Empty password", "an empty password field lets anyone log in without a password; give a crypt(3) hash, or \"!\" to lock the account.")
		case strings.ContainsAny(pw, ":\n\r"):
			return bad("password", "Invalid password", "the value (not shown: it is secret) contains \":\" or a newline, so it is not a crypt(3) hash.")
		}
	}
	if keys, ok := v["ssh_authorized_keys"].([]string); ok {
		for i, k := range keys {
			if strings.TrimSpace(k) == "" || strings.ContainsAny(k, "\n\r") {
				return bad("ssh_authorized_keys", "Invalid key", fmt.Sprintf("element %d is empty or spans several lines; give one key per element.", i))
			}
		}
	}
	return nil
}

// userPlan is what converging a user takes, worked out from the current state before
// anything is changed, so that a plan and an apply report the same changes.
type userPlan struct {
	useradd  []string // the useradd command, or nil
	usermod  []string // the usermod command, or nil
	password bool     // set the password with chpasswd
	home     *homePlan
	keys     bool // converge the authorized keys
}

// CheckApply implements Resource.
func (u *User) CheckApply(ctx context.Context, env *Env, apply bool) (*Result, error) {
	res := &Result{}
	db, err := readAccountDB(env, u.Password != nil)
	if err != nil {
		return res, err
	}
	cur := db.user(u.Name)
	if u.Ensure == "absent" {
		return res, u.remove(ctx, env, db, cur, res, apply)
	}
	p, err := u.plan(env, db, cur, res)
	if err != nil || !apply || !res.Changed() {
		return res, err
	}
	return res, u.converge(ctx, env, p)
}

// plan records in res what differs and returns what to do about it.
func (u *User) plan(env *Env, db *accountDB, cur *passwdEntry, res *Result) (*userPlan, error) {
	p := &userPlan{}

	// The primary group: given, or (for a new account) the group named after the user.
	var primary *groupEntry
	var primaryNote string
	switch {
	case u.Group != nil:
		if primary = db.resolveGroup(*u.Group); primary == nil {
			primaryNote = fmt.Sprintf("group %s does not exist", *u.Group)
		}
	case cur != nil:
		primary = db.groupByGID(cur.gid)
	default:
		primary = db.group(u.Name)
	}
	// The supplementary groups, as names.
	var supp []string
	var missing []string
	for _, s := range u.Groups {
		if g := db.resolveGroup(s); g != nil {
			supp = append(supp, g.name)
		} else {
			supp = append(supp, s)
			missing = append(missing, s)
		}
	}
	slices.Sort(supp)
	supp = slices.Compact(supp)
	suppNote := ""
	if len(missing) > 0 {
		suppNote = fmt.Sprintf("group %s does not exist", strings.Join(missing, ", "))
	}
	uidNote := ""
	if u.UID != nil {
		if other := db.userByUID(*u.UID); other != nil && other.name != u.Name {
			uidNote = fmt.Sprintf("uid %d is taken by user %s", *u.UID, other.name)
		}
	}

	// The account itself: one useradd, or one usermod with every change.
	var home string
	moveHome := false
	if cur == nil {
		home = u.defaultHome(env)
		argv := []string{"useradd", "--home-dir", home, "--no-create-home"}
		if u.UID != nil {
			argv = append(argv, "--uid", strconv.Itoa(*u.UID))
		}
		if u.Group != nil {
			argv = append(argv, "--gid", *u.Group)
		} else if primary != nil {
			argv = append(argv, "--gid", primary.name)
		}
		if u.Groups != nil && len(supp) > 0 {
			argv = append(argv, "--groups", strings.Join(supp, ","))
		}
		if u.Shell != nil {
			argv = append(argv, "--shell", *u.Shell)
		}
		if u.Comment != nil {
			argv = append(argv, "--comment", *u.Comment)
		}
		if u.System {
			argv = append(argv, "--system")
		}
		p.useradd = append(argv, u.Name)
		var notes []string
		for _, n := range []string{uidNote, primaryNote, suppNote} {
			if n != "" {
				notes = append(notes, n)
			}
		}
		res.Add("ensure", "absent", "present"+planNote(strings.Join(notes, "; ")))
	} else {
		home = cur.home
		var mod []string
		if u.UID != nil && cur.uid != *u.UID {
			res.Add("uid", strconv.Itoa(cur.uid), strconv.Itoa(*u.UID)+planNote(uidNote))
			mod = append(mod, "--uid", strconv.Itoa(*u.UID))
		}
		if u.Group != nil && (primary == nil || primary.gid != cur.gid) {
			want := *u.Group
			if primary != nil {
				want = primary.name
			}
			res.Add("group", db.groupName(cur.gid), want+planNote(primaryNote))
			mod = append(mod, "--gid", *u.Group)
		}
		if u.Groups != nil {
			if now := db.supplementary(u.Name); !slices.Equal(now, supp) {
				res.Add("groups", u.show("groups", listOrNone(now)), u.show("groups", listOrNone(supp))+planNote(suppNote))
				mod = append(mod, "--groups", strings.Join(supp, ","))
			}
		}
		if u.Home != nil && cur.home != *u.Home {
			home = *u.Home
			to := u.show("home", home)
			mod = append(mod, "--home", home)
			if u.managesHome(env, cur, home) && u.canMoveHome(env, cur, home) {
				moveHome = true
				mod = append(mod, "--move-home")
				to += " (content moved from " + u.show("home", cur.home) + ")"
			}
			res.Add("home", u.show("home", cur.home), to)
		}
		if u.Shell != nil && cur.shell != *u.Shell {
			res.Add("shell", u.show("shell", cur.shell), u.show("shell", *u.Shell))
			mod = append(mod, "--shell", *u.Shell)
		}
		if u.Comment != nil && cur.gecos != *u.Comment {
			res.Add("comment", u.show("comment", cur.gecos), u.show("comment", *u.Comment))
			mod = append(mod, "--comment", *u.Comment)
		}
		if mod != nil {
			p.usermod = append(append([]string{"usermod"}, mod...), u.Name)
		}
	}

	// The password: a new account has "!" (locked) until chpasswd sets it.
	if u.Password != nil {
		switch {
		case cur == nil:
			p.password = *u.Password != "!"
		case db.shadow[u.Name] != *u.Password:
			res.Add("password", Redacted, Redacted)
			p.password = true
		}
	}

	// The home directory and the authorized keys in it, as they will be once the account
	// is changed: usermod re-owns the files of the home that had the old uid or gid.
	manageHome := u.managesHome(env, cur, home)
	if !manageHome && u.SSHAuthorizedKeys == nil {
		return p, nil
	}
	if err := checkHomePath(home, u.Name); err != nil {
		return p, err
	}
	own := u.futureOwner(db, cur, primary)
	src := home // where the home's content is now
	if moveHome {
		src = cur.home
	}
	if manageHome {
		hp, err := u.planHome(env, db, home, src, own, res)
		if err != nil {
			return p, err
		}
		p.home = hp
	}
	if u.SSHAuthorizedKeys != nil {
		changed, err := u.planKeys(env, db, home, src, own, manageHome, p.home != nil && p.home.create, res)
		if err != nil {
			return p, err
		}
		p.keys = changed
	}
	return p, nil
}

// converge carries out the plan.
func (u *User) converge(ctx context.Context, env *Env, p *userPlan) error {
	changedAccount := p.useradd != nil || p.usermod != nil || p.password
	if changedAccount {
		defer invalidateAccounts(env)
	}
	if p.useradd != nil {
		if err := accountTool(ctx, env, "create user "+u.Name, p.useradd, "", u.secrets()...); err != nil {
			return err
		}
	}
	if p.usermod != nil {
		if err := accountTool(ctx, env, "change user "+u.Name, p.usermod, "", u.secrets()...); err != nil {
			return err
		}
	}
	if p.password {
		// chpasswd reads "name:hash" lines; --encrypted takes the hash as it is.
		if err := accountTool(ctx, env, "set the password of user "+u.Name, []string{"chpasswd", "--encrypted"},
			u.Name+":"+*u.Password+"\n", u.secrets()...); err != nil {
			return err
		}
	}
	if p.home == nil && !p.keys {
		return nil
	}
	// The ids as the account now has them (useradd picked any that were not given).
	db, err := readAccountDB(env, false)
	if err != nil {
		return err
	}
	acct := db.user(u.Name)
	if acct == nil {
		return fmt.Errorf("user %s is not in %s after it was created", u.Name, env.Root.HostPath("/etc/passwd"))
	}
	if p.home != nil {
		if err := u.convergeHome(env, acct, p.home); err != nil {
			return err
		}
	}
	if p.keys {
		return u.convergeKeys(env, acct)
	}
	return nil
}

// remove records and (when applying) performs the removal of the account.
func (u *User) remove(ctx context.Context, env *Env, db *accountDB, cur *passwdEntry, res *Result, apply bool) error {
	if cur == nil {
		return nil
	}
	res.Add("ensure", "present", "absent")
	argv := []string{"userdel"}
	if u.RemoveHome && cur.home != "" && checkHomePath(cur.home, u.Name) == nil {
		info, err := current(env, cur.home)
		if err != nil {
			return err
		}
		if info != nil && info.IsDir() {
			if info.UID != cur.uid {
				return fmt.Errorf("cannot remove the home %s of user %s: it is owned by %s, not by the user, and userdel refuses; fix its owner or set remove_home = false",
					env.Root.HostPath(cur.home), u.Name, db.userName(info.UID))
			}
			res.Add("home_directory", u.show("home", cur.home), "absent (removed with its content)")
			argv = append(argv, "--remove")
		}
	}
	if !apply {
		return nil
	}
	defer invalidateAccounts(env)
	return accountTool(ctx, env, "remove user "+u.Name, append(argv, u.Name), "")
}

// secrets returns the values that must not appear in logs or messages: the password, and
// any attribute the configuration marked sensitive.
func (u *User) secrets() []string {
	var out []string
	if u.Password != nil {
		out = append(out, *u.Password)
	}
	for attr, v := range map[string]*string{"comment": u.Comment, "home": u.Home, "shell": u.Shell, "group": u.Group} {
		if v != nil && u.isSensitive(attr) {
			out = append(out, *v)
		}
	}
	return out
}

// defaultHome is the home of a new account: home if given, else what useradd would give.
func (u *User) defaultHome(env *Env) string {
	if u.Home != nil {
		return *u.Home
	}
	base := keyValueFile(env, "/etc/default/useradd")["HOME"]
	if base == "" || !path.IsAbs(base) {
		base = "/home"
	}
	return path.Join(path.Clean(base), u.Name)
}

// managesHome reports whether manage_home applies to the account's home. Not to
// /nonexistent (NONEXISTENT of /etc/login.defs), which says there is none; and for a system
// account (a uid outside UID_MIN..UID_MAX, or system = true) only when home is given, since
// their homes are usually system directories (daemon's /usr/sbin, www-data's /var/www) that
// are not theirs to own, and useradd --system creates none.
func (u *User) managesHome(env *Env, cur *passwdEntry, home string) bool {
	switch {
	case !u.ManageHome || home == nonexistentHome(env):
		return false
	case u.Home != nil:
		return true
	}
	uid := -1
	if cur != nil {
		uid = cur.uid
	}
	if u.UID != nil {
		uid = *u.UID
	}
	return !(u.System && cur == nil) && (uid < 0 || !systemUID(env, uid))
}

// systemUID reports whether uid is outside the range of ordinary accounts, UID_MIN..UID_MAX
// of /etc/login.defs (1000..60000 by default).
func systemUID(env *Env, uid int) bool {
	defs := keyValueFile(env, "/etc/login.defs")
	lo, hi := 1000, 60000
	if n, err := strconv.Atoi(defs["UID_MIN"]); err == nil {
		lo = n
	}
	if n, err := strconv.Atoi(defs["UID_MAX"]); err == nil {
		hi = n
	}
	return uid < lo || uid > hi
}

// nonexistentHome is the home of accounts that have none: NONEXISTENT of /etc/login.defs,
// else /nonexistent.
func nonexistentHome(env *Env) string {
	if s := keyValueFile(env, "/etc/login.defs")["NONEXISTENT"]; s != "" && path.IsAbs(s) {
		return path.Clean(s)
	}
	return "/nonexistent"
}

// canMoveHome reports whether usermod --move-home should move the account's home to new:
// the old home is a directory of the account's own (an ordinary account, and the owner: a
// system account's /usr/sbin is never moved), nothing is at new, and the directory that is
// to hold it exists.
func (u *User) canMoveHome(env *Env, cur *passwdEntry, new string) bool {
	old := cur.home
	if schema.CheckPath(old) != nil || old == "/" || new == "/" || systemUID(env, cur.uid) {
		return false
	}
	oi, err := current(env, old)
	if err != nil || oi == nil || !oi.IsDir() || oi.UID != cur.uid {
		return false
	}
	if pi, err := env.Root.Stat(path.Dir(new)); err != nil || !pi.IsDir() {
		return false
	}
	ni, err := current(env, new)
	return err == nil && ni == nil
}

// futureOwner is the owner the home and its files should have once the account is
// converged, with names for messages; an id is -1 when only useradd will know it.
func (u *User) futureOwner(db *accountDB, cur *passwdEntry, primary *groupEntry) *homeOwner {
	o := &homeOwner{uid: -1, gid: -1, user: u.Name, group: u.Name, oldUID: -1, oldGID: -1}
	if cur != nil {
		o.uid, o.gid, o.oldUID, o.oldGID = cur.uid, cur.gid, cur.uid, cur.gid
		o.group = db.groupName(cur.gid)
	}
	if u.UID != nil {
		o.uid = *u.UID
	}
	switch {
	case primary != nil:
		o.gid, o.group = primary.gid, primary.name
	case u.Group != nil:
		o.gid, o.group = -1, *u.Group
	}
	return o
}

// checkHomePath refuses homes that manage_home and remove_home must not touch.
func checkHomePath(home, name string) error {
	switch {
	case schema.CheckPath(home) != nil:
		return fmt.Errorf("the home of user %s, %q, is not an absolute path; set home, or manage_home = false", name, home)
	case home == "/":
		return fmt.Errorf("the home of user %s is /, which cannot be given to one user; set manage_home = false (and remove_home = false)", name)
	}
	return nil
}

// listOrNone renders a list of names for a change line.
func listOrNone(names []string) string {
	if len(names) == 0 {
		return "(none)"
	}
	return strings.Join(names, ",")
}

// Serial implements resource.Serial: the shadow tools lock the account files, and one
// resource's view of them must not change under it.
func (u *User) Serial() {}

// String names the user for messages.
func (u *User) String() string { return "user " + u.Name }

var (
	_ Resource = (*User)(nil)
	_ Serial   = (*User)(nil)
)
