package resource

import "sync"

// Changes records the paths this run has changed, so that a resource can react to changes
// another one made: a service runs `systemctl daemon-reload` when a unit file changed
// earlier in the run. The engine adds the managed paths of every resource that changed.
type Changes struct {
	mu    sync.Mutex
	paths []string
	marks map[string]int
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
		if match(p) {
			out = append(out, p)
		}
	}
	c.marks[key] = len(c.paths)
	return out
}
