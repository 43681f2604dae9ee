package agent

import (
	"bufio"
	"context"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/satchelcm/satchel/internal/release"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// fleet is an office's release repository and one node's agent, in temporary directories.
type fleet struct {
	t      *testing.T
	base   string
	repo   string // the release repository
	keys   string
	config string // the config repository being released
	root   string // what the node's agent converges
	state  string // the node's state directory
	log    *syncBuffer
}

// syncBuffer is a log shared by an agent and a test.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// configHCL is the config released as version N: motd says "release N", app.conf comes
// from a file, and extra holds whatever a test adds.
const configHCL = `node "school-1" {
  file "motd" {
    path    = "/etc/motd"
    content = "welcome to release %s\n"
  }
  file "app" {
    path   = "/etc/app.conf"
    source = "app.conf"
  }
}
`

func newFleet(t *testing.T) *fleet {
	t.Helper()
	base := t.TempDir()
	f := &fleet{t: t, base: base, repo: filepath.Join(base, "repo"), keys: filepath.Join(base, "keys"),
		config: filepath.Join(base, "config"), root: filepath.Join(base, "root"), state: filepath.Join(base, "state"), log: &syncBuffer{}}
	must(t, release.Init(f.repo, f.keys))
	must(t, os.MkdirAll(filepath.Join(f.config, "files"), 0o755))
	must(t, os.WriteFile(filepath.Join(base, "facts.json"), []byte(`{"hostname": "school-1"}`), 0o644))
	return f
}

// withRelease1 returns a fleet whose node has applied release 1 (app.conf "a\n") from
// the repository directory, and the node's options.
func withRelease1(t *testing.T) (*fleet, Options) {
	t.Helper()
	f := newFleet(t)
	opts := f.options(f.repo)
	f.release("1", "a\n")
	if rep := f.cycle(opts); rep.Outcome != Applied {
		t.Fatalf("release 1: %s %q", rep.Outcome, rep.Error)
	}
	return f, opts
}

// writeConfig writes the config repository for release label, with app.conf's content.
func (f *fleet) writeConfig(label, app string) {
	f.t.Helper()
	must(f.t, os.WriteFile(filepath.Join(f.config, "main.hcl"), []byte(strings.Replace(configHCL, "%s", label, 1)), 0o644))
	must(f.t, os.WriteFile(filepath.Join(f.config, "files", "app.conf"), []byte(app), 0o644))
}

// addResources adds a file to the config repository declaring body's resources for the
// node school-1.
func (f *fleet) addResources(name, body string) {
	f.t.Helper()
	must(f.t, os.WriteFile(filepath.Join(f.config, name+".hcl"), []byte("node \"school-1\" {\n"+body+"}\n"), 0o644))
}

// otherFile declares /etc/other, which release 1 does not manage.
const otherFile = `  file "other" {
    path    = "/etc/other"
    content = "written by release 2\n"
  }
`

// publish releases the config as it is now.
func (f *fleet) publish(opts release.Options) *release.Manifest {
	f.t.Helper()
	pub, err := release.Publish(context.Background(), f.repo, f.keys, f.config, opts)
	must(f.t, err)
	return pub.Manifest
}

// release writes and publishes release label.
func (f *fleet) release(label, app string, checks ...release.HealthCheck) *release.Manifest {
	f.t.Helper()
	f.writeConfig(label, app)
	return f.publish(release.Options{HealthChecks: checks})
}

// options returns an agent's options for the repositories given.
func (f *fleet) options(repos ...string) Options {
	cfg := DefaultConfig()
	cfg.Repositories = repos
	cfg.Trust = filepath.Join(f.repo, release.MetadataDir, "root.json")
	cfg.StateDir = f.state
	return Options{Config: cfg, Root: f.root, FactsFile: filepath.Join(f.base, "facts.json"), Log: f.log}
}

// cycle opens an agent with opts, runs one cycle and closes it.
func (f *fleet) cycle(opts Options) *CycleReport {
	f.t.Helper()
	a, err := Open(opts)
	must(f.t, err)
	defer a.Close()
	rep, err := a.Cycle(context.Background())
	must(f.t, err)
	f.t.Logf("cycle: %s (error %q, refresh errors %q)", summary(rep), rep.Error, rep.RefreshErrors)
	return rep
}

// read returns a file of the node's root.
func (f *fleet) read(p string) string {
	f.t.Helper()
	data, err := os.ReadFile(filepath.Join(f.root, p))
	if err != nil {
		if os.IsNotExist(err) {
			return ""
		}
		f.t.Fatal(err)
	}
	return string(data)
}

// wantFiles fails unless the node's motd and app.conf are those of release label.
func (f *fleet) wantFiles(label, app string) {
	f.t.Helper()
	if got, want := f.read("etc/motd"), "welcome to release "+label+"\n"; got != want {
		f.t.Errorf("/etc/motd = %q, want %q", got, want)
	}
	if got := f.read("etc/app.conf"); got != app {
		f.t.Errorf("/etc/app.conf = %q, want %q", got, app)
	}
}

// state reads the agent's state.
func (f *fleet) readState() *State {
	f.t.Helper()
	st, err := ReadState(f.state)
	must(f.t, err)
	return st
}

// snapshot copies the repository as it is now (a mirror that stops updating).
func (f *fleet) snapshot() string {
	f.t.Helper()
	dst := filepath.Join(f.t.TempDir(), "mirror")
	must(f.t, os.CopyFS(dst, os.DirFS(f.repo)))
	return dst
}

// serveGo serves dir with net/http's file server on 127.0.0.1.
func serveGo(t *testing.T, dir string) string {
	t.Helper()
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return srv.URL
}

// servePython serves dir with python3 -m http.server on 127.0.0.1: a static mirror with
// no Satchel code on the server side.
func servePython(t *testing.T, dir string) string {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		if os.Getenv("SATCHEL_SYSTEST") != "" {
			t.Fatal("python3 is needed (scripts/deps.sh installs it)")
		}
		t.Skip("python3 not installed")
	}
	cmd := exec.Command("python3", "-u", "-m", "http.server", "--bind", "127.0.0.1", "--directory", dir, "0")
	out, err := cmd.StdoutPipe()
	must(t, err)
	cmd.Stderr = nil
	must(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	port := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`port (\d+)`)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				port <- m[1]
				break
			}
		}
		for sc.Scan() {
		}
	}()
	select {
	case p := <-port:
		return "http://127.0.0.1:" + p
	case <-time.After(20 * time.Second):
		t.Fatal("python3 -m http.server did not start")
	}
	return ""
}

// storeFiles lists the chunk files of the repository's store.
func (f *fleet) chunkFiles() []string {
	f.t.Helper()
	var out []string
	must(f.t, filepath.WalkDir(filepath.Join(f.repo, release.StoreDir, "chunks"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			out = append(out, p)
		}
		return err
	}))
	return out
}
