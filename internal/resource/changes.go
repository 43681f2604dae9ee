package resource

import "sync"

// Changes records the paths this run has changed, so that a resource can react to changes
// another one made: a service runs `systemctl daemon-reload` when a unit file changed
// earlier in the run. The engine adds the managed paths of every resource that changed.
type Changes struct {
	mu      sync.Mutex
	paths   []string
	marks   map[string]int
	handled map[string]map[string]int // key -> path -> recordings Since(key) skips
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

// Since returns the recorded paths that match, added since the last call with the same key,
// and moves the key's mark to now: "what changed since I last reloaded?".
func (c *Changes) Since(key string, match func(string) bool) []string {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.marks == nil {
		c.marks = map[string]int{}
	}
	var out []string
	for _, p := range c.paths[c.marks[key]:] {
		if n := c.handled[key][p]; n > 0 {
			c.handled[key][p] = n - 1
			continue
		}
		if match(p) {
			out = append(out, p)
		}
	}
	c.marks[key] = len(c.paths)
	return out
}

// Handled says that the caller has already reacted, for key, to its own change of paths,
// which the engine records only once the caller returns: Since(key) skips the next
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
