package resource

import "sync"

// Changes records the paths this run has changed, so that a resource can react to changes
// another one made: a service runs `systemctl daemon-reload` when a unit file changed
// earlier in the run. The engine adds the managed paths of every resource that changed.
type Changes struct {
	mu      sync.Mutex
	paths   []string
	marks   map[string]int
	handled map[string]map[string]int // key -> path -> recordings Pending(key) skips
}

// Add records changed paths.
func (c *Changes) Add(paths ...string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.paths = append(c.paths, paths...)
	c.mu.Unlock()
}

// Pending returns the recorded paths that match, added since key's mark ("what changed
// since systemd was last reloaded?"), and the position to Commit once the caller has acted on
// them. A caller that fails does not commit, so the next one acts instead.
func (c *Changes) Pending(key string, match func(string) bool) ([]string, int) {
	if c == nil {
		return nil, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, p := range c.paths[c.marks[key]:] {
		if c.handled[key][p] > 0 {
			continue
		}
		if match(p) {
			out = append(out, p)
		}
	}
	return out, len(c.paths)
}

// Commit moves key's mark to pos (from Pending): the changes before it have been acted on.
func (c *Changes) Commit(key string, pos int) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.marks == nil {
		c.marks = map[string]int{}
	}
	if pos <= c.marks[key] {
		return
	}
	for _, p := range c.paths[c.marks[key]:pos] {
		if n := c.handled[key][p]; n > 0 {
			c.handled[key][p] = n - 1
		}
	}
	c.marks[key] = pos
}

// Handled says that the caller has already reacted, for key, to its own change of paths,
// which the engine records only once the caller returns: Pending(key) skips the next
// recording of each. A timer that wrote its unit files has reloaded systemd itself, so the
// next service must not reload again because of them.
func (c *Changes) Handled(key string, paths ...string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.handled == nil {
		c.handled = map[string]map[string]int{}
	}
	if c.handled[key] == nil {
		c.handled[key] = map[string]int{}
	}
	for _, p := range paths {
		c.handled[key][p]++
	}
}
