package resource

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"sync"

	"github.com/satchelcm/satchel/internal/fsroot"
)

// Accounts resolves user and group names through the root's own /etc/passwd and /etc/group,
// so that an image prepared with --root gets the image's ids, not the build host's. The
// files are read once and re-read after Invalidate (a run that creates accounts calls it).
type Accounts struct {
	root   *fsroot.Root
	mu     sync.Mutex
	loaded bool
	users  map[string]int
	groups map[string]int
	uname  map[int]string
	gname  map[int]string
}

// NewAccounts returns a resolver for the accounts inside root.
func NewAccounts(root *fsroot.Root) *Accounts { return &Accounts{root: root} }

// Invalidate forgets what was read, after accounts were added or removed.
func (a *Accounts) Invalidate() {
	a.mu.Lock()
	a.loaded = false
	a.mu.Unlock()
}

func (a *Accounts) load() error {
	if a.loaded {
		return nil
	}
	var err error
	if a.users, a.uname, err = readIDs(a.root, "/etc/passwd"); err != nil {
		return err
	}
	if a.groups, a.gname, err = readIDs(a.root, "/etc/group"); err != nil {
		return err
	}
	a.loaded = true
	return nil
}

// readIDs parses name:x:id:… lines. A missing file means no names (ids still work).
func readIDs(root *fsroot.Root, p string) (map[string]int, map[int]string, error) {
	byName, byID := map[string]int{}, map[int]string{}
	data, err := root.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return byName, byID, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", root.HostPath(p), err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 3 || strings.HasPrefix(f[0], "#") {
			continue
		}
		id, err := strconv.Atoi(f[2])
		if err != nil {
			continue
		}
		if _, dup := byName[f[0]]; !dup {
			byName[f[0]] = id
		}
		if _, dup := byID[id]; !dup {
			byID[id] = f[0]
		}
	}
	return byName, byID, nil
}

// UID resolves a user name or number.
func (a *Accounts) UID(name string) (int, error) { return a.resolve(name, "user", "/etc/passwd") }

// GID resolves a group name or number.
func (a *Accounts) GID(name string) (int, error) { return a.resolve(name, "group", "/etc/group") }

func (a *Accounts) resolve(name, kind, file string) (int, error) {
	if id, err := strconv.Atoi(name); err == nil && id >= 0 {
		return id, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.load(); err != nil {
		return -1, err
	}
	m := a.users
	if kind == "group" {
		m = a.groups
	}
	id, ok := m[name]
	if !ok {
		return -1, fmt.Errorf("%s %q does not exist in %s; create it first (and require that resource)", kind, name, a.root.HostPath(file))
	}
	return id, nil
}

// UserName returns the name of uid, or the number as text.
func (a *Accounts) UserName(uid int) string { return a.name(uid, false) }

// GroupName returns the name of gid, or the number as text.
func (a *Accounts) GroupName(gid int) string { return a.name(gid, true) }

func (a *Accounts) name(id int, group bool) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.load() == nil {
		m := a.uname
		if group {
			m = a.gname
		}
		if n, ok := m[id]; ok {
			return n
		}
	}
	return strconv.Itoa(id)
}

// accountFiles are the files whose change invalidates name resolution.
var accountFiles = map[string]bool{"/etc/passwd": true, "/etc/group": true}

// noteWrite forgets resolved names after the run changed /etc/passwd or /etc/group, so a
// resource that requires the one adding an account sees it.
func noteWrite(env *Env, p string) {
	if accountFiles[p] && env.Accounts != nil {
		env.Accounts.Invalidate()
	}
}
