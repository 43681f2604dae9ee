package systest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// Environment variables that configure the harness.
const (
	// EnvSystest set to 1 turns "cannot run system tests here" from a skip into a failure.
	// make check sets it, so that CI runs these tests every time.
	EnvSystest = "SATCHEL_SYSTEST"
	// EnvCache is the cache directory of scripts/test-image.sh (default DefaultCache).
	EnvCache = "SATCHEL_TEST_CACHE"
	// EnvImage names an image directory to use instead of $SATCHEL_TEST_CACHE/base.
	EnvImage = "SATCHEL_TEST_IMAGE"
)

// DefaultCache is where scripts/test-image.sh keeps the image when SATCHEL_TEST_CACHE is unset.
const DefaultCache = "/var/cache/satchel-test"

// Image is a Debian root tree that containers boot from. It is only read: every container
// writes to an overlay of its own.
type Image struct {
	dir      string // the root tree: the overlays' lower layer
	archives string // the shared apt archive cache, or "" for none
}

// Dir returns the image's root directory on the host.
func (img *Image) Dir() string { return img.dir }

// Available returns the test image, or stops the test if system tests cannot run here: it is
// skipped, with the reason, or fails when SATCHEL_SYSTEST=1 (CI).
func Available(t testing.TB) *Image {
	t.Helper()
	img, problems := locate()
	if len(problems) > 0 {
		msg := "system tests cannot run here: " + strings.Join(problems, "; ")
		if os.Getenv(EnvSystest) == "1" {
			t.Fatalf("%s (%s=1, so this is a failure, not a skip)", msg, EnvSystest)
		}
		t.Skip(msg)
	}
	process.once.Do(func() { process.err = setUpProcess(img, t) })
	if process.err != nil {
		t.Fatalf("system tests: %v", process.err)
	}
	return img
}

// locate finds the image and checks that containers can run; it returns what is missing.
func locate() (*Image, []string) {
	var problems []string
	if os.Geteuid() != 0 {
		problems = append(problems, "they need root (systemd-nspawn, overlay mounts, cgroups)")
	}
	for _, cmd := range []string{"systemd-nspawn", "nsenter"} {
		if _, err := exec.LookPath(cmd); err != nil {
			problems = append(problems, cmd+" is not installed (scripts/test-image.sh installs it)")
		}
	}
	cache := os.Getenv(EnvCache)
	if cache == "" {
		cache = DefaultCache
	}
	dir := os.Getenv(EnvImage)
	if dir == "" {
		dir = filepath.Join(cache, "base")
	}
	if _, err := os.Stat(filepath.Join(dir, "usr/lib/systemd/systemd")); err != nil {
		problems = append(problems, fmt.Sprintf("no test image at %s: run scripts/test-image.sh (make systest-image)", dir))
	}
	if _, err := cgroupRoots(); err != nil {
		problems = append(problems, err.Error())
	}
	return &Image{dir: dir, archives: filepath.Join(cache, "apt-archives")}, problems
}

// process is what the test process sets up once, whatever the number of containers.
var process struct {
	once sync.Once
	err  error
	lock *os.File // base.lock, held shared while this process may use the image
}

// setUpProcess reaps what dead test processes left behind and takes the image's lock.
func setUpProcess(img *Image, t testing.TB) error {
	reap(t)
	// scripts/test-image.sh swaps a rebuilt image in only when it can lock base.lock
	// exclusively; holding it shared keeps the lower layer of our overlays in place.
	if f, err := os.Open(img.dir + ".lock"); err == nil {
		if err := unix.Flock(int(f.Fd()), unix.LOCK_SH); err != nil {
			f.Close()
			return fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		process.lock = f // held until the process exits
	}
	if err := os.MkdirAll(img.archives, 0o755); err != nil {
		return fmt.Errorf("apt archive cache: %w", err)
	}
	return nil
}
