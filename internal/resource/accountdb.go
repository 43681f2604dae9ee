package resource

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// accountDB is the root's account database as the shadow tools keep it: /etc/passwd,
// /etc/group and /etc/shadow, read through env.Root (so that --root builds see the image's
// accounts, and no NSS module or getent answers for some other machine).
type accountDB struct {
	users  []*passwdEntry
	groups []*groupEntry
	shadow map[string]string // login name -> password field; nil if not read
}

// passwdEntry is one line of /etc/passwd.
type passwdEntry struct {
	name     string
	uid, gid int
	gecos    string
	home     string
	shell    string
}

// groupEntry is one line of /etc/group.
type groupEntry struct {
	name    string
	gid     int
	members []string
}

// readAccountDB reads the root's account files; /etc/shadow only if withShadow. A missing
// file holds no accounts.
func readAccountDB(env *Env, withShadow bool) (*accountDB, error) {
	db := &accountDB{}
	err := readColonFile(env, "/etc/passwd", 7, func(f []string) {
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 == nil && err2 == nil {
			db.users = append(db.users, &passwdEntry{name: f[0], uid: uid, gid: gid, gecos: f[4], home: f[5], shell: f[6]})
		}
	})
	if err != nil {
		return nil, err
	}
	err = readColonFile(env, "/etc/group", 4, func(f []string) {
		gid, err := strconv.Atoi(f[2])
		if err != nil {
			return
		}
		var members []string
		for _, m := range strings.Split(f[3], ",") {
			if m = strings.TrimSpace(m); m != "" {
				members = append(members, m)
			}
		}
		db.groups = append(db.groups, &groupEntry{name: f[0], gid: gid, members: members})
	})
	if err != nil {
		return nil, err
	}
	if withShadow {
		db.shadow = map[string]string{}
		err = readColonFile(env, "/etc/shadow", 2, func(f []string) {
			if _, dup := db.shadow[f[0]]; !dup {
				db.shadow[f[0]] = f[1]
			}
		})
		if err != nil {
			return nil, err
		}
	}
	return db, nil
}

// readColonFile calls fn with the fields of every entry of a colon-separated account file
// that has at least n fields; comments and NIS "+"/"-" lines are skipped.
func readColonFile(env *Env, p string, n int, fn func([]string)) error {
	data, err := env.Root.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", env.Root.HostPath(p), err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || line[0] == '+' || line[0] == '-' {
			continue
		}
		if f := strings.Split(line, ":"); len(f) >= n && f[0] != "" {
			fn(f)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", env.Root.HostPath(p), err)
	}
	return nil
}

// user returns the account named name, or nil.
func (db *accountDB) user(name string) *passwdEntry {
	for _, u := range db.users {
		if u.name == name {
			return u
		}
	}
	return nil
}

// userByUID returns the first account with uid, or nil.
func (db *accountDB) userByUID(uid int) *passwdEntry {
	for _, u := range db.users {
		if u.uid == uid {
			return u
		}
	}
	return nil
}

// group returns the group named name, or nil.
func (db *accountDB) group(name string) *groupEntry {
	for _, g := range db.groups {
		if g.name == name {
			return g
		}
	}
	return nil
}

// groupByGID returns the first group with gid, or nil.
func (db *accountDB) groupByGID(gid int) *groupEntry {
	for _, g := range db.groups {
		if g.gid == gid {
			return g
		}
	}
	return nil
}

// resolveGroup finds a group given by name or, as the shadow tools read a number, by gid.
func (db *accountDB) resolveGroup(s string) *groupEntry {
	if id, err := strconv.Atoi(s); err == nil {
		return db.groupByGID(id)
	}
	return db.group(s)
}

// userName returns the name of uid, or the number as text.
func (db *accountDB) userName(uid int) string {
	if u := db.userByUID(uid); u != nil {
		return u.name
	}
	return strconv.Itoa(uid)
}

// groupName returns the name of gid, or the number as text.
func (db *accountDB) groupName(gid int) string {
	if g := db.groupByGID(gid); g != nil {
		return g.name
	}
	return strconv.Itoa(gid)
}

// supplementary returns the groups that list name as a member, sorted.
func (db *accountDB) supplementary(name string) []string {
	var out []string
	for _, g := range db.groups {
		if slices.Contains(g.members, name) {
			out = append(out, g.name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// primaryOf returns the accounts whose primary group is gid.
func (db *accountDB) primaryOf(gid int) []string {
	var out []string
	for _, u := range db.users {
		if u.gid == gid {
			out = append(out, u.name)
		}
	}
	return out
}

// accountTool runs one of the shadow tools (useradd, usermod, userdel, groupadd, groupmod,
// groupdel, chpasswd) on the root: with --root when the root is not "/" (the tools then chroot
// into it, so the root needs no copy of them), without a shell, with its argv logged for
// operators. Secrets never go in argv, where ps shows them: they go through stdin. A failure
// is an error that quotes the tool's own message, with any secret scrubbed from it.
func accountTool(ctx context.Context, env *Env, what string, argv []string, stdin string, secrets ...string) error {
	full := append([]string{argv[0]}, rootArgs(env)...)
	full = append(full, argv[1:]...)
	if env.Log != nil {
		shown := make([]string, len(full))
		for i, a := range full {
			shown[i] = scrubSecrets(a, secrets)
		}
		env.Log.Debug("run", "what", what, "argv", shown)
	}
	c := command{argv: full, timeout: 2 * time.Minute}
	if stdin != "" {
		c.stdin = strings.NewReader(stdin)
	}
	res, err := c.run(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	out := scrubSecrets(oneLine(res.output()), secrets)
	if res.code != 0 {
		if out == "" {
			out = argv[0] + " failed"
		}
		return fmt.Errorf("%s: %s (exit status %d)", what, out, res.code)
	}
	if out != "" && env.Log != nil {
		env.Log.Warn(argv[0]+" warned", "what", what, "output", out)
	}
	return nil
}

// rootArgs returns the shadow tools' option for acting on the root.
func rootArgs(env *Env) []string {
	if env.Root.Dir() == "/" {
		return nil
	}
	return []string{"--root", env.Root.Dir()}
}

// oneLine joins the lines of a tool's output for a one-line message.
func oneLine(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "; ")
}

// scrubSecrets replaces every secret found in s.
func scrubSecrets(s string, secrets []string) string {
	for _, v := range secrets {
		if len(v) >= 3 {
			s = strings.ReplaceAll(s, v, Redacted)
		}
	}
	return s
}

// invalidateAccounts makes later resources re-read the account files after a change.
func invalidateAccounts(env *Env) {
	if env.Accounts != nil {
		env.Accounts.Invalidate()
	}
}

// keyValueFile reads the settings of a file such as /etc/login.defs ("KEY value") or
// /etc/default/useradd ("KEY=value"). A missing file has no settings.
func keyValueFile(env *Env, p string) map[string]string {
	out := map[string]string{}
	data, err := env.Root.ReadFile(p)
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.ContainsAny(k, " \t") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			k, v = f[0], f[1]
		}
		out[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
	}
	return out
}

// accountName is what the shadow tools accept as a user or group name (Debian's rules, with
// upper case): not empty, at most 32 characters, not a number, no ":" "," or space.
var accountName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$`)

// checkAccountName reports why s cannot name a user or group, or "".
func checkAccountName(s string) string {
	if _, err := strconv.Atoi(s); err == nil {
		return fmt.Sprintf("%q is a number; names must not be (the tools would read it as an id).", s)
	}
	if len(s) > 32 || !accountName.MatchString(s) {
		return fmt.Sprintf("%q is not a valid name: letters, digits, _ . and -, at most 32 characters, not starting with - or . (an optional final $ for machine accounts).", s)
	}
	return ""
}

// wholeID returns an attribute value as an id (a uid or gid): a whole number from 0 to
// 4294967294. ok is false if the value is set but is not one.
func wholeID(v any) (id int64, set, ok bool) {
	switch n := v.(type) {
	case nil:
		return 0, false, true
	case int:
		id = int64(n)
	case int64:
		id = n
	case float64:
		if n != float64(int64(n)) {
			return 0, true, false
		}
		id = int64(n)
	default:
		return 0, true, true // unknown until the node's facts are
	}
	return id, true, id >= 0 && id < 1<<32-1
}
