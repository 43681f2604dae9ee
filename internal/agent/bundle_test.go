package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/satchelcm/satchel/internal/api"
	"github.com/satchelcm/satchel/internal/bundle"
	"github.com/satchelcm/satchel/internal/client"
	"github.com/satchelcm/satchel/internal/pki"
	"github.com/satchelcm/satchel/internal/registry"
	"github.com/satchelcm/satchel/internal/release"
	"github.com/satchelcm/satchel/internal/server"
	"github.com/satchelcm/satchel/internal/store"
)

// route is an office and schools that never reach it: each school enrolled (in the
// warehouse), then the office moved to another port, so that the address the schools
// hold leads nowhere. Releases reach them on sticks only.
type route struct {
	t       *testing.T
	base    string
	data    string
	office  *office
	admin   *client.Admin
	config  string
	lib     string // the content library's source directory
	schools map[string]Options
}

func newRoute(t *testing.T, schools ...string) *route {
	t.Helper()
	base := t.TempDir()
	r := &route{t: t, base: base, data: filepath.Join(base, "office"), config: filepath.Join(base, "config"),
		lib: filepath.Join(base, "lib"), schools: map[string]Options{}}
	r.office = startOffice(t, r.data, "127.0.0.1:0", nil)
	ctx := context.Background()
	for _, name := range schools {
		state := filepath.Join(base, name, "state")
		token := "st-token-for-" + name + "-abcdefghijklmnop"
		must(t, r.office.srv.Store().CreateToken(ctx, registry.Token{ID: token, Label: "warehouse", UsesLeft: 1, Created: time.Now()}))
		id, err := client.NewIdentity(filepath.Join(state, IdentityDirName))
		must(t, err)
		res, err := id.Enroll(ctx, client.EnrollRequest{Server: "https://" + r.office.addr, CAFingerprint: r.office.srv.CAFingerprint(),
			Name: name, Token: token, Facts: []byte(`{"hostname":"` + name + `"}`)})
		must(t, err)
		must(t, InitServerTrust(state, res.Trust))
		facts := filepath.Join(base, name, "facts.json")
		must(t, os.WriteFile(facts, []byte(`{"hostname":"`+name+`"}`), 0o644))
		cfg := DefaultConfig()
		cfg.StateDir = state
		r.schools[name] = Options{Config: cfg, Root: filepath.Join(base, name, "root"), FactsFile: facts, Log: testLog{t, name}, PullAttempts: 1}
	}
	// The schools' address for the office leads nowhere from now on.
	r.office.kill()
	r.office = startOffice(t, r.data, "127.0.0.1:0", nil)
	cred, err := server.LoadCredential(filepath.Join(r.data, server.CredentialFile))
	must(t, err)
	r.admin, err = client.NewAdmin(cred.Server, cred.CAFingerprint, cred.Token)
	must(t, err)
	must(t, os.MkdirAll(r.lib, 0o755))
	var inv strings.Builder
	inv.WriteString("hostname\n")
	for _, name := range schools {
		inv.WriteString(name + "\n")
	}
	must(t, os.MkdirAll(r.config, 0o755))
	must(t, os.WriteFile(filepath.Join(r.config, "inventory.csv"), []byte(inv.String()), 0o644))
	return r
}

type testLog struct {
	t    *testing.T
	name string
}

func (l testLog) Write(p []byte) (int, error) {
	l.t.Logf("%s: %s", l.name, strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// publish adds the library as it is now to the office's store and publishes release
// label: a motd and the library as a tree.
func (r *route) publish(label string) (*release.Manifest, store.ID) {
	r.t.Helper()
	ctx := context.Background()
	st, err := store.Open(filepath.Join(r.office.srv.RepoDir(), release.StoreDir))
	must(r.t, err)
	lib, err := st.Add(ctx, r.lib, nil)
	must(r.t, err)
	hcl := fmt.Sprintf(`inventory {
  source = "inventory.csv"
}
node "*" {
  file "motd" {
    path    = "/etc/motd"
    content = "release %s on ${node.name}\n"
  }
  tree "library" {
    path = "/srv/library"
    root = %q
  }
}
`, label, lib)
	must(r.t, os.WriteFile(filepath.Join(r.config, "main.hcl"), []byte(hcl), 0o644))
	pub, err := release.Publish(ctx, r.office.srv.RepoDir(), r.office.srv.KeysDir(), r.config, release.Options{})
	must(r.t, err)
	return pub.Manifest, lib
}

// writeLib puts files into the library: name → content.
func (r *route) writeLib(files map[string]string) {
	r.t.Helper()
	for name, content := range files {
		p := filepath.Join(r.lib, filepath.FromSlash(name))
		must(r.t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(r.t, os.WriteFile(p, []byte(content), 0o644))
	}
}

// export writes a bundle for nodes into a new stick directory and returns it with its
// plan.
func (r *route) export(req api.BundleRequest) (string, api.BundlePlan, *bundle.Index) {
	r.t.Helper()
	ctx := context.Background()
	plan, err := r.admin.Bundle(ctx, req)
	must(r.t, err)
	ix, _, err := bundle.OpenIndex(plan.Index, r.admin.CAFingerprint())
	must(r.t, err)
	stick := filepath.Join(r.t.TempDir(), "stick")
	must(r.t, bundle.Write(ctx, stick, ix, plan.Index, bundle.SourceFunc(r.admin.RepoFile), bundle.WriteOptions{}))
	return stick, plan, ix
}

// importAt imports the stick at school name.
func (r *route) importAt(name, stick string, opts ImportOptions) (*ImportResult, error) {
	r.t.Helper()
	return r.importCtx(context.Background(), name, stick, opts)
}

func (r *route) importCtx(ctx context.Context, name, stick string, opts ImportOptions) (*ImportResult, error) {
	r.t.Helper()
	a, err := Open(r.schools[name])
	must(r.t, err)
	defer a.Close()
	return a.ImportBundle(ctx, stick, opts)
}

// collect hands every node's returns on the stick to the office, as satchel bundle
// collect does, and returns the receipts (and errors) by node.
func (r *route) collect(stick string) (map[string]api.ReturnsReceipt, map[string]error) {
	r.t.Helper()
	receipts, errs := map[string]api.ReturnsReceipt{}, map[string]error{}
	entries, err := os.ReadDir(filepath.Join(stick, bundle.ReturnsDir))
	must(r.t, err)
	for _, e := range entries {
		signed, reports, err := bundle.ReadReturns(stick, e.Name(), api.MaxReportBytes, api.MaxReturnsBytes)
		must(r.t, err)
		up := api.ReturnsUpload{Returns: signed, Reports: reports}
		receipt, err := r.admin.Returns(context.Background(), up)
		if err != nil {
			errs[e.Name()] = err
			continue
		}
		receipts[e.Name()] = receipt
	}
	return receipts, errs
}

func (r *route) read(name, p string) string {
	r.t.Helper()
	data, err := os.ReadFile(filepath.Join(r.schools[name].Root, filepath.FromSlash(p)))
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	must(r.t, err)
	return string(data)
}

func (r *route) good(name string) uint64 {
	r.t.Helper()
	st, err := ReadState(r.schools[name].StateDir)
	must(r.t, err)
	if st.Good == nil {
		return 0
	}
	return st.Good.Version
}

// deltaTargets lists what the office's delta from → to carries.
func (r *route) deltaTargets(from, to store.ID) map[store.ID]bool {
	r.t.Helper()
	st, err := store.Open(filepath.Join(r.office.srv.RepoDir(), release.StoreDir))
	must(r.t, err)
	if !from.IsZero() {
		if _, err := st.DeltaIndex(from, to); err != nil {
			_, err := st.BuildDelta(context.Background(), from, to, nil)
			must(r.t, err)
		}
	}
	ix, err := st.DeltaIndex(from, to)
	if err != nil {
		_, err = st.BuildDelta(context.Background(), from, to, nil)
		must(r.t, err)
		ix, err = st.DeltaIndex(from, to)
		must(r.t, err)
	}
	out := map[store.ID]bool{}
	for _, e := range ix.Entries {
		if e.Kind != store.DeltaDict {
			out[e.Target] = true
		}
	}
	return out
}

func storeFiles(ix *bundle.Index) []string {
	var out []string
	for _, f := range ix.Files {
		if strings.HasPrefix(f.Path, release.StoreDir+"/") {
			out = append(out, path.Base(f.Path))
		}
	}
	return out
}

// Two schools that never reach the office get release 1 and then release 2 by stick, and
// their reports come back: the second stick carries, for each school, exactly what the
// first one did not deliver.
func TestBundleRoundTrip(t *testing.T) {
	r := newRoute(t, "school-1", "school-2")
	r.writeLib(map[string]string{"a.txt": strings.Repeat("alpha ", 20000), "sub/b.txt": "beta\n", "c.bin": string(randomBytes(1, 300<<10))})
	m1, lib1 := r.publish("1")
	ctx := context.Background()

	stick1, plan1, ix1 := r.export(api.BundleRequest{Nodes: []string{"school-1", "school-2"}})
	for _, n := range plan1.Nodes {
		for _, tr := range n.Trees {
			if tr.From != "" || tr.Held {
				t.Errorf("%s never reported, yet gets %s from %q (held %v)", n.Name, tr.Address, tr.From, tr.Held)
			}
		}
	}
	for _, name := range []string{"school-1", "school-2"} {
		res, err := r.importAt(name, stick1, ImportOptions{})
		if err != nil {
			t.Fatalf("%s imports stick 1: %v", name, err)
		}
		if res.Report == nil || res.Report.Outcome != Applied || res.Report.Release != 1 {
			t.Fatalf("%s: %+v", name, res.Report)
		}
		if len(res.Report.RefreshErrors) > 0 || res.Report.Repository == "" || !strings.Contains(res.Report.Repository, stagingDirName) {
			t.Errorf("%s: release from %q, refresh errors %q: want the stick's copy only, the server never tried", name, res.Report.Repository, res.Report.RefreshErrors)
		}
		if got, want := r.read(name, "etc/motd"), "release 1 on "+name+"\n"; got != want {
			t.Errorf("%s: motd %q, want %q", name, got, want)
		}
		if got := r.read(name, "srv/library/sub/b.txt"); got != "beta\n" {
			t.Errorf("%s: library b.txt %q", name, got)
		}
		if _, err := os.Stat(filepath.Join(r.schools[name].StateDir, stagingDirName)); !os.IsNotExist(err) {
			t.Errorf("%s: the staging copy is left after a successful import (%v)", name, err)
		}
	}

	// Collecting: every report once, facts taken; collecting again stores nothing.
	receipts, errs := r.collect(stick1)
	if len(errs) > 0 || len(receipts) != 2 {
		t.Fatalf("collect: %v, %v", receipts, errs)
	}
	for name, rc := range receipts {
		if !rc.Recorded || rc.Stored != rc.Reports || rc.Reports == 0 {
			t.Errorf("first collection of %s: %+v", name, rc)
		}
		reps, err := r.admin.Reports(ctx, name, 0)
		must(t, err)
		if len(reps) != rc.Reports || reps[0].Outcome != string(Applied) || reps[0].Release != 1 {
			t.Errorf("%s: %d reports on the server (%+v), want %d, newest applied release 1", name, len(reps), reps, rc.Reports)
		}
		n, err := r.admin.Node(ctx, name)
		must(t, err)
		if n.LastReturns.IsZero() {
			t.Errorf("%s: no time of last returns", name)
		}
	}
	again, errs := r.collect(stick1)
	for name, rc := range again {
		if rc.Recorded || rc.Stored != 0 {
			t.Errorf("second collection of %s stored something: %+v", name, rc)
		}
	}
	if len(errs) > 0 {
		t.Errorf("second collection: %v", errs)
	}

	// Release 2: the library changes a little; the second stick carries deltas from what
	// each school reported holding.
	r.writeLib(map[string]string{"sub/b.txt": "beta, second edition\n", "d.txt": "new\n"})
	m2, lib2 := r.publish("2")
	stick2, plan2, ix2 := r.export(api.BundleRequest{Nodes: []string{"school-1", "school-2"}})
	for _, n := range plan2.Nodes {
		for _, tr := range n.Trees {
			want := lib1.String()
			if tr.Address == "config" {
				want = m1.Config.String()
			}
			if tr.From != want {
				t.Errorf("%s: %s from %q, want from %s (what it reported holding)", n.Name, tr.Address, tr.From, want)
			}
		}
	}
	// Exactly the entries the first stick did not deliver: all of release 2's trees but
	// what release 1's held.
	for _, pair := range [][3]store.ID{{m1.Config, m2.Config}, {lib1, lib2}} {
		full, delivered, sent := r.deltaTargets(store.ID{}, pair[1]), r.deltaTargets(store.ID{}, pair[0]), r.deltaTargets(pair[0], pair[1])
		want := map[store.ID]bool{}
		for id := range full {
			if !delivered[id] {
				want[id] = true
			}
		}
		if !mapsEqual(sent, want) {
			t.Errorf("delta %s → %s carries %d entries, want the %d of %d not delivered before", pair[0].String()[:8], pair[1].String()[:8], len(sent), len(want), len(full))
		}
	}
	if ix2.Size() >= ix1.Size() {
		t.Errorf("stick 2 holds %d bytes, stick 1 %d: want less", ix2.Size(), ix1.Size())
	}
	t.Logf("stick 1: %d bytes (%v); stick 2: %d bytes (%v)", ix1.Size(), storeFiles(ix1), ix2.Size(), storeFiles(ix2))
	for _, name := range []string{"school-1", "school-2"} {
		res, err := r.importAt(name, stick2, ImportOptions{})
		if err != nil || res.Report.Outcome != Applied || res.Report.Release != 2 {
			t.Fatalf("%s imports stick 2: %v %+v", name, err, res)
		}
		if got := r.read(name, "srv/library/sub/b.txt"); got != "beta, second edition\n" {
			t.Errorf("%s: library b.txt %q after release 2", name, got)
		}
		if res.Report.Transfer.Deltas == 0 {
			t.Errorf("%s: release 2 arrived without a delta: %+v", name, res.Report.Transfer)
		}
	}
	// The reports of release 1 that the office acknowledged (in stick 2's index) are gone
	// from the spools: stick 2's returns carry only what is new.
	receipts, errs = r.collect(stick2)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for name, rc := range receipts {
		if rc.Stored != rc.Reports || rc.Reports != 1 {
			t.Errorf("%s: stick 2's returns list %d reports, %d new: want only the release 2 run's", name, rc.Reports, rc.Stored)
		}
	}
}

func mapsEqual(a, b map[store.ID]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func randomBytes(seed uint64, n int) []byte {
	rnd := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rnd.Uint32())
	}
	return b
}

// copyStick copies a stick, as a tamperer would start.
func copyStick(t *testing.T, stick string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "stick")
	must(t, os.CopyFS(dst, os.DirFS(stick)))
	return dst
}

// stickFile finds the one file of the stick whose slash path matches pattern.
func stickFile(t *testing.T, stick, pattern string) string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(stick, filepath.FromSlash(pattern)))
	must(t, err)
	if len(matches) != 1 {
		t.Fatalf("%s: %d matches in the stick", pattern, len(matches))
	}
	return matches[0]
}

// A stick modified on the way, or made for another fleet, is refused at the school with
// nothing applied; an older stick after a newer one too; returns forged for another node
// are refused at the office.
func TestBundleRefusals(t *testing.T) {
	r := newRoute(t, "school-1", "school-2")
	r.writeLib(map[string]string{"a.txt": strings.Repeat("alpha ", 20000), "c.bin": string(randomBytes(2, 200<<10))})
	m1, lib1 := r.publish("1")
	stick1, _, _ := r.export(api.BundleRequest{Nodes: []string{"school-1", "school-2"}})
	for _, name := range []string{"school-1", "school-2"} {
		if _, err := r.importAt(name, stick1, ImportOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	r.collect(stick1)
	r.writeLib(map[string]string{"a.txt": strings.Repeat("alpha ", 19999) + "omega", "d.txt": "new\n"})
	m2, lib2 := r.publish("2")
	stick2, _, _ := r.export(api.BundleRequest{Nodes: []string{"school-1", "school-2"}})
	libPack := "store/deltas/" + lib1.String() + "-" + lib2.String() + ".pack"
	outside := filepath.Join(t.TempDir(), "outside")
	must(t, os.MkdirAll(outside, 0o755))
	must(t, os.WriteFile(filepath.Join(outside, "file"), []byte("not the bundle's"), 0o644))

	// A bundle of another fleet's office, for a node of the same name.
	other := newRoute(t, "school-1")
	other.writeLib(map[string]string{"x.txt": "x"})
	other.publish("9")
	foreign, _, _ := other.export(api.BundleRequest{All: true})

	for _, tc := range []struct {
		name   string
		stick  string
		tamper func(stick string)
		want   error
	}{
		{"a flipped byte in a chunk's pack", stick2, func(s string) {
			p := stickFile(t, s, libPack)
			data, err := os.ReadFile(p)
			must(t, err)
			data[len(data)/2] ^= 0x20
			must(t, os.WriteFile(p, data, 0o644))
		}, bundle.ErrDamaged},
		{"a truncated pack", stick2, func(s string) {
			p := stickFile(t, s, libPack)
			info, err := os.Stat(p)
			must(t, err)
			must(t, os.Truncate(p, info.Size()-1))
		}, bundle.ErrDamaged},
		{"the release manifest replaced by an older one", stick2, func(s string) {
			old, err := os.ReadFile(filepath.Join(stick1, "targets", "releases", "1.json"))
			must(t, err)
			must(t, os.WriteFile(filepath.Join(s, "targets", "releases", "2.json"), old, 0o644))
		}, bundle.ErrDamaged},
		{"the index edited", stick2, func(s string) {
			p := filepath.Join(s, bundle.IndexFile)
			data, err := os.ReadFile(p)
			must(t, err)
			// The signed bytes are base64 in the envelope: change one character of them.
			i := strings.Index(string(data), `"signed": "`) + len(`"signed": "`) + 40
			data[i] = map[bool]byte{true: 'B', false: 'A'}[data[i] == 'A']
			must(t, os.WriteFile(p, data, 0o644))
		}, bundle.ErrDamaged},
		{"an extra file with a name beginning with ..", stick2, func(s string) {
			must(t, os.WriteFile(filepath.Join(s, "store", "..evil"), []byte("x"), 0o644))
		}, bundle.ErrDamaged},
		{"an extra directory named ..x under metadata", stick2, func(s string) {
			must(t, os.MkdirAll(filepath.Join(s, "metadata", "..x"), 0o755))
		}, bundle.ErrDamaged},
		{"a file replaced by a symbolic link out of the bundle", stick2, func(s string) {
			p := stickFile(t, s, "store/deltas/*"+m2.Config.String()+".idx.zst")
			must(t, os.Remove(p))
			must(t, os.Symlink(filepath.Join(outside, "file"), p))
		}, bundle.ErrDamaged},
		{"a directory replaced by a symbolic link out of the bundle", stick2, func(s string) {
			must(t, os.CopyFS(filepath.Join(outside, "secrets-copy"), os.DirFS(filepath.Join(s, "metadata"))))
			must(t, os.RemoveAll(filepath.Join(s, "metadata")))
			must(t, os.Symlink(filepath.Join(outside, "secrets-copy"), filepath.Join(s, "metadata")))
		}, bundle.ErrDamaged},
		{"a bundle of another fleet", foreign, nil, bundle.ErrForeign},
		{"an older bundle after a newer one", stick1, nil, ErrOlderBundle},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.stick
			if tc.tamper != nil {
				s = copyStick(t, tc.stick)
				tc.tamper(s)
			}
			if tc.want == ErrOlderBundle {
				// The node must have seen the newer release first.
				if _, err := r.importAt("school-2", stick2, ImportOptions{}); err != nil {
					t.Fatal(err)
				}
				_, err := r.importAt("school-2", s, ImportOptions{})
				if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), "nothing was applied") {
					t.Fatalf("import: %v, want %v saying nothing was applied", err, tc.want)
				}
				if r.good("school-2") != 2 || r.read("school-2", "etc/motd") != "release 2 on school-2\n" {
					t.Errorf("school-2 left release 2: good %d, motd %q", r.good("school-2"), r.read("school-2", "etc/motd"))
				}
				return
			}
			_, err := r.importAt("school-1", s, ImportOptions{})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), "nothing was applied") {
				t.Fatalf("import: %v, want %v saying nothing was applied", err, tc.want)
			}
			t.Logf("refused: %v", err)
			if got := r.good("school-1"); got != 1 {
				t.Errorf("good release %d after a refused stick, want 1", got)
			}
			if got := r.read("school-1", "etc/motd"); got != "release 1 on school-1\n" {
				t.Errorf("motd %q after a refused stick", got)
			}
			if _, err := os.Stat(filepath.Join(r.schools["school-1"].Root, "srv", "library", "d.txt")); !os.IsNotExist(err) {
				t.Errorf("release 2's library file is there after a refused stick (%v)", err)
			}
		})
	}

	// Files an operating system leaves on sticks, unlisted and harmless, are ignored: the
	// genuine stick 2, so decorated, is imported.
	good := copyStick(t, stick2)
	must(t, os.WriteFile(filepath.Join(good, "store", "._junk"), []byte("apple double"), 0o644))
	must(t, os.MkdirAll(filepath.Join(good, ".Trashes"), 0o755))
	res, err := r.importAt("school-1", good, ImportOptions{})
	if err != nil || res.Report == nil || res.Report.Outcome != Applied || r.good("school-1") != 2 {
		t.Fatalf("the genuine stick after the refusals: %v %+v", err, res)
	}
	if got := r.read("school-1", "srv/library/d.txt"); got != "new\n" {
		t.Errorf("library d.txt %q", got)
	}
	_ = m1

	// Returns forged for school-2 with school-1's key, and school-1's returns put in
	// school-2's place, are refused; school-2's own are taken.
	id1, err := client.LoadIdentity(filepath.Join(r.schools["school-1"].StateDir, IdentityDirName))
	must(t, err)
	forged := &bundle.Returns{Format: bundle.ReturnsFormat, Node: "school-2", Seq: 99, Written: time.Now(), Bundle: "x",
		Facts: []byte(`{"hostname":"forged"}`), Reports: []bundle.ReturnedReport{}}
	signed, err := bundle.SignReturns(forged, id1.Signer())
	must(t, err)
	_, err = r.admin.Returns(context.Background(), api.ReturnsUpload{Returns: signed, Reports: map[string][]byte{}})
	if client.Code(err) != api.CodeUnauthorized || !strings.Contains(err.Error(), "signed by another key") {
		t.Errorf("returns of school-2 signed by school-1: %v", err)
	}
	n, err := r.admin.Node(context.Background(), "school-2")
	must(t, err)
	if strings.Contains(string(n.Facts), "forged") {
		t.Errorf("forged returns changed school-2's facts: %s", n.Facts)
	}
	// A report changed on the stick after the node signed its returns.
	must(t, os.WriteFile(filepath.Join(good, "returns", "school-1", "returns.json"), signedReturnsFor(t, good, "school-1"), 0o644))
	reports, err := os.ReadDir(filepath.Join(good, "returns", "school-1", "reports"))
	must(t, err)
	p := filepath.Join(good, "returns", "school-1", "reports", reports[len(reports)-1].Name())
	body, err := os.ReadFile(p)
	must(t, err)
	must(t, os.WriteFile(p, []byte(strings.Replace(string(body), `"outcome":"applied"`, `"outcome":"failed"`, 1)), 0o644))
	_, errs := r.collect(good)
	if err := errs["school-1"]; err == nil || !strings.Contains(err.Error(), "not the one the node signed") {
		t.Errorf("a report changed on the stick: %v", err)
	}
}

// signedReturnsFor reads the node's returns file on the stick.
func signedReturnsFor(t *testing.T, stick, node string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(stick, "returns", node, "returns.json"))
	must(t, err)
	return data
}

// An import cut at random points (the stick pulled out) leaves the node as it was, and
// the next insertion resumes the copy where it stopped; the node then applies the release.
func TestBundleImportResumes(t *testing.T) {
	old := bundle.PartSize
	bundle.PartSize = 16 << 10 // many pieces, so that cuts fall everywhere
	t.Cleanup(func() { bundle.PartSize = old })
	r := newRoute(t, "school-1")
	r.writeLib(map[string]string{"a.bin": string(randomBytes(3, 400<<10)), "b.txt": strings.Repeat("b", 100<<10)})
	r.publish("1")
	stick, _, ix := r.export(api.BundleRequest{All: true})
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, bundle of %d bytes", seed, ix.Size())
	rnd := rand.New(rand.NewPCG(seed, 1))
	cuts := 0
	var resumedAt []int64
	for attempt := 0; ; attempt++ {
		if attempt > 50 {
			t.Fatal("no import finished after 50 attempts")
		}
		ctx, cancel := context.WithCancel(context.Background())
		var copied atomic.Bool // the copy is over: the stick is no longer read
		if attempt%2 == 1 {
			// Also pulled out at a random moment, which may fall in the middle of a file.
			time.AfterFunc(time.Duration(rnd.Int64N(int64(3*time.Millisecond))), func() {
				if !copied.Load() {
					cancel()
				}
			})
		}
		var cutAt int64 = -1
		res, err := r.importCtx(ctx, "school-1", stick, ImportOptions{Progress: func(done, total int64) {
			if cutAt < 0 {
				// Where this insertion starts, and where the stick is pulled out: the first
				// three times before the copy ends, then a third of the time not.
				resumedAt = append(resumedAt, done)
				span := total - done
				if attempt >= 3 {
					span = span * 3 / 2
				}
				cutAt = done + rnd.Int64N(span+1)
			}
			if done >= cutAt && done < total {
				cancel()
			}
			copied.Store(done == total)
		}})
		cancel()
		if err == nil {
			if res.Report == nil || res.Report.Outcome != Applied {
				t.Fatalf("the finished import: %+v", res)
			}
			break
		}
		cuts++
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "nothing was applied") {
			t.Fatalf("cut import %d: %v", cuts, err)
		}
		if r.good("school-1") != 0 || r.read("school-1", "etc/motd") != "" {
			t.Fatalf("after cut %d the node changed: good %d", cuts, r.good("school-1"))
		}
	}
	if cuts < 3 {
		t.Errorf("%d cuts: want at least the first three", cuts)
	}
	// Each attempt started from what the previous ones had copied: never from nothing
	// after the first.
	for i := 1; i < len(resumedAt); i++ {
		if resumedAt[i] < resumedAt[i-1] {
			t.Errorf("attempt %d started at %d bytes, the one before at %d: a resumed copy went back", i+1, resumedAt[i], resumedAt[i-1])
		}
	}
	if got := r.read("school-1", "etc/motd"); got != "release 1 on school-1\n" {
		t.Errorf("motd %q", got)
	}
	if got := r.read("school-1", "srv/library/b.txt"); got != strings.Repeat("b", 100<<10) {
		t.Errorf("library b.txt: %d bytes", len(got))
	}
	t.Logf("%d cuts; attempts started at %v bytes", cuts, resumedAt)
}

// A bundle made for another school gives this one its content and applies nothing.
func TestBundleForOtherNodes(t *testing.T) {
	r := newRoute(t, "school-1", "school-2")
	r.writeLib(map[string]string{"a.bin": string(randomBytes(4, 100<<10))})
	_, lib := r.publish("1")
	stick, _, _ := r.export(api.BundleRequest{Nodes: []string{"school-1"}})
	res, err := r.importAt("school-2", stick, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.ForNode || res.Report != nil || r.good("school-2") != 0 || r.read("school-2", "etc/motd") != "" {
		t.Errorf("school-2 applied a bundle made for school-1: %+v, good %d", res, r.good("school-2"))
	}
	st, err := store.Open(filepath.Join(r.schools["school-2"].StateDir, storeDirName))
	must(t, err)
	objs, chunks, err := st.Missing(context.Background(), lib)
	must(t, err)
	if len(objs)+len(chunks) != 0 {
		t.Errorf("school-2 lacks %d objects and %d chunks of the library the stick carried", len(objs), len(chunks))
	}
}

// The agent, running, finds a stick mounted where bundle_paths say and imports it on its
// own, once; the stick's returns are then written.
func TestAgentImportsStickOnItsOwn(t *testing.T) {
	r := newRoute(t, "school-1")
	r.writeLib(map[string]string{"a.txt": "a\n"})
	r.publish("1")
	stick, _, ix := r.export(api.BundleRequest{All: true})
	media := filepath.Join(t.TempDir(), "media")
	must(t, os.MkdirAll(filepath.Join(media, "other"), 0o755)) // a stick without a bundle
	opts := r.schools["school-1"]
	opts.Interval, opts.Splay = time.Hour, 0
	opts.BundlePaths, opts.BundlePoll = []string{filepath.Join(media, "*")}, 20*time.Millisecond
	a, err := Open(opts)
	must(t, err)
	defer a.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	// The stick is mounted after the agent started.
	must(t, os.Rename(stick, filepath.Join(media, "usb0")))
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := ReadState(opts.StateDir)
		must(t, err)
		if st.Bundle == ix.ID {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("the agent did not import the stick in 20 s (state %+v)", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	must(t, <-done)
	if r.good("school-1") != 1 || r.read("school-1", "etc/motd") != "release 1 on school-1\n" {
		t.Errorf("after the stick: good %d, motd %q", r.good("school-1"), r.read("school-1", "etc/motd"))
	}
	if _, err := os.Stat(filepath.Join(media, "usb0", "returns", "school-1", bundle.ReturnsFile)); err != nil {
		t.Errorf("no returns on the stick: %v", err)
	}
	// Left in, the stick is not imported again: one report of an applied release.
	data, err := os.ReadFile(filepath.Join(media, "usb0", "returns", "school-1", bundle.ReturnsFile))
	must(t, err)
	ret, _, err := bundle.OpenReturns(data)
	must(t, err)
	if ret.Seq != 1 {
		t.Errorf("returns numbered %d: the stick was imported %d times", ret.Seq, ret.Seq)
	}
}

// A school that got its release (here by stick) relays it on a stick of its own to a
// neighbour with no link, which checks and applies it as one from the office; the
// neighbour's returns on that stick are collected at the office.
func TestBundleRelay(t *testing.T) {
	r := newRoute(t, "school-1", "school-2")
	r.writeLib(map[string]string{"a.bin": string(randomBytes(5, 150<<10)), "b.txt": "b\n"})
	r.publish("1")
	stick, _, _ := r.export(api.BundleRequest{Nodes: []string{"school-1"}})
	if _, err := r.importAt("school-1", stick, ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	relayed := filepath.Join(t.TempDir(), "relay")
	ix, err := Relay(context.Background(), r.schools["school-1"].StateDir, relayed, RelayOptions{Nodes: []string{"school-2"}})
	if err != nil {
		t.Fatal(err)
	}
	if ix.Release != 1 || !ix.For("school-2") || len(ix.Roots) != 2 {
		t.Errorf("relayed index: release %d, nodes %v, roots %v", ix.Release, ix.Nodes, ix.Roots)
	}
	// The deltas built for the stick are not left in the relay's store.
	if left, _ := filepath.Glob(filepath.Join(r.schools["school-1"].StateDir, storeDirName, "deltas", "*")); len(left) > 0 {
		t.Errorf("the relay's store keeps %v", left)
	}
	res, err := r.importAt("school-2", relayed, ImportOptions{})
	if err != nil || res.Report == nil || res.Report.Outcome != Applied {
		t.Fatalf("school-2 imports the relayed stick: %v %+v", err, res)
	}
	if got := r.read("school-2", "srv/library/b.txt"); got != "b\n" {
		t.Errorf("school-2's library b.txt %q", got)
	}
	receipts, errs := r.collect(relayed)
	if len(errs) > 0 || receipts["school-2"].Stored != 1 {
		t.Errorf("collecting the relayed stick: %+v %v", receipts, errs)
	}
	// The stick is signed with the relay's own certificate, from the fleet's CA.
	_, signer, err := bundle.ReadIndex(relayed, r.office.srv.CAFingerprint())
	must(t, err)
	if name, err := pki.NodeName(signer); err != nil || name != "school-1" {
		t.Errorf("relayed stick signed by %v (%v), want school-1's certificate", name, err)
	}
}

// A school three releases behind jumps straight to the newest: the stick carries the
// newest metadata and deltas from the trees the school holds, not the releases between.
func TestBundleJumpsReleases(t *testing.T) {
	r := newRoute(t, "school-1")
	r.writeLib(map[string]string{"a.txt": "one\n"})
	r.publish("1")
	stick, _, _ := r.export(api.BundleRequest{All: true})
	if _, err := r.importAt("school-1", stick, ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	r.collect(stick)
	for _, label := range []string{"2", "3", "4"} {
		r.writeLib(map[string]string{"a.txt": "release " + label + "\n"})
		r.publish(label)
	}
	stick, _, ix := r.export(api.BundleRequest{All: true})
	for _, f := range ix.Files {
		if strings.HasPrefix(f.Path, "targets/") && f.Path != "targets/releases/4.json" {
			t.Errorf("the stick carries %s: only the newest release's manifest is needed", f.Path)
		}
	}
	res, err := r.importAt("school-1", stick, ImportOptions{})
	if err != nil || res.Report == nil || res.Report.Outcome != Applied || r.good("school-1") != 4 {
		t.Fatalf("release 1 → 4: %v %+v (good %d)", err, res, r.good("school-1"))
	}
	if got := r.read("school-1", "srv/library/a.txt"); got != "release 4\n" {
		t.Errorf("library a.txt %q", got)
	}
}
