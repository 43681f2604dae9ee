package systest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const satchelModule = "github.com/satchelcm/satchel"

var satchelBuild struct {
	once sync.Once
	path string
	err  error
}

// SatchelBinary returns the path of a static satchel binary built from this checkout
// (CGO_ENABLED=0 go build ./cmd/satchel at the module's root), built once per test process,
// whatever the number of tests asking: containers run it, so it must not need the host's libc,
// nor be built with -race like the tests themselves.
func SatchelBinary(t testing.TB) string {
	t.Helper()
	satchelBuild.once.Do(func() {
		start := time.Now()
		satchelBuild.path, satchelBuild.err = buildSatchel()
		if satchelBuild.err == nil {
			t.Logf("built %s in %v", satchelBuild.path, time.Since(start).Round(time.Millisecond))
		}
	})
	if satchelBuild.err != nil {
		t.Fatalf("build satchel: %v", satchelBuild.err)
	}
	return satchelBuild.path
}

// InstallSatchel copies SatchelBinary to /usr/local/bin/satchel in the container and returns
// that path.
func (c *Container) InstallSatchel(t testing.TB) string {
	t.Helper()
	const dst = "/usr/local/bin/satchel"
	c.CopyIn(t, SatchelBinary(t), dst)
	return dst
}

func buildSatchel() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the go command is not in PATH: %w", err)
	}
	self, err := readStat(os.Getpid())
	if err != nil {
		return "", err
	}
	// Named after this process, so that reap removes it once the process is gone.
	dir, err := os.MkdirTemp("", fmt.Sprintf("satchel-systest-bin-%d-%d-", os.Getpid(), self.start))
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "satchel")
	cmd := exec.Command(gobin, "build", "-trimpath", "-o", out, "./cmd/satchel")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var msg bytes.Buffer
	cmd.Stdout, cmd.Stderr = &msg, &msg
	if err := cmd.Run(); err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, msg.String())
	}
	return out, nil
}

// moduleRoot finds Satchel's go.mod, walking up from the working directory (a test runs in
// its package's directory).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && modulePath(b) == satchelModule {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	// Not below the checkout (a test binary run by hand elsewhere): ask the go command.
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if gomod := strings.TrimSpace(string(out)); err == nil && gomod != "" && gomod != os.DevNull {
		if b, err := os.ReadFile(gomod); err == nil && modulePath(b) == satchelModule {
			return filepath.Dir(gomod), nil
		}
	}
	return "", errors.New("cannot find the go.mod of " + satchelModule + " above the working directory")
}

// modulePath returns the module path declared in a go.mod file.
func modulePath(gomod []byte) string {
	for _, line := range strings.Split(string(gomod), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module"); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}
