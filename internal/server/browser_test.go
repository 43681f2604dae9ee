package server_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/satchelcm/satchel/internal/api"
	"github.com/satchelcm/satchel/internal/dirtar"
	"github.com/satchelcm/satchel/internal/registry"
	"github.com/satchelcm/satchel/internal/server"
)

// chromium finds Debian's chromium (make deps installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium (apt-get install chromium; make deps)")
	return ""
}

// The operator's morning, in a real headless Chromium: log in, see the fleet with one
// school failing, open it and read its error, approve a pending school (confirming the
// dialog), and see the change. The fleet page's screenshot is kept (SATCHEL_SCREENSHOT
// names where; docs/images/fleet.png is one).
func TestDashboardInBrowser(t *testing.T) {
	browserPath := chromium(t)
	s := startServer(t)
	ctx := context.Background()
	// A release whose inventory names the schools (the fleet page shows their names).
	s.publish(t, "", map[string]string{
		"inventory.csv": "hostname,School Name\nschool-001,Escuela Rural 14 de Mayo\nschool-002,Escola Municipal Vila Nova\n" +
			"school-003,Escuela N° 212 Los Andes\nschool-004,Colegio San Martín\nschool-005,Escuela Hogar Rural\n",
		"main.hcl": "inventory {\n  source = \"inventory.csv\"\n}\nnode \"*\" {\n  file \"motd\" {\n    path    = \"/etc/motd\"\n    content = \"${var.school_name}\\n\"\n  }\n}\n",
	})
	for _, name := range []string{"school-001", "school-002", "school-003", "school-004"} {
		_, n := s.enrolled(t, name)
		outcome, body := "applied", `{"outcome":"applied","release":1}`
		if name == "school-003" {
			outcome = "failed"
			body = `{"outcome":"failed","release":1,"error":"squid: the web filter's configuration does not load","run":{"resources":[{"address":"service.squid","status":"failed","error":"squid.conf line 12: unknown directive"}]}}`
		}
		if _, err := n.PutReport(ctx, api.ReportUpload{ID: "r1", Outcome: outcome, Release: 1, Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.enroll(t, "school-005", "", "mid-5"); err != nil {
		t.Fatal(err)
	}
	cred, err := server.LoadCredential(s.data + "/" + server.CredentialFile)
	if err != nil {
		t.Fatal(err)
	}

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(browserPath),
		chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.NoFirstRun, chromedp.Flag("ignore-certificate-errors", true), // the server's certificate is from its own CA
		chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	bctx, cancel = context.WithTimeout(bctx, 90*time.Second)
	defer cancel()
	// Confirmation dialogs (approve) are accepted, as the operator would.
	if err := chromedp.Listen(bctx, func(ev any) {
		if _, ok := ev.(*cdppage.EventJavascriptDialogOpening); ok {
			go func() {
				_, _ = chromedp.Call(bctx, cdppage.HandleJavaScriptDialog, cdppage.HandleJavaScriptDialogParams{Accept: true})
			}()
		}
	}); err != nil {
		t.Fatal(err)
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("the text of %s: %v", sel, err)
		}
		return s
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatalf("in the browser, %s: %v", what, err)
		}
	}

	do("open the dashboard", chromedp.Navigate(s.url+"/ui/"), chromedp.WaitVisible(chromedp.ID("token")))
	loginURL, err := chromedp.Run(bctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	do("log in", chromedp.SendKeys(chromedp.ID("token"), cred.Token), chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.CSS("table.fleet")))
	fleet := text("main")
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	do("open the failing school", chromedp.Click(chromedp.Search(`//a[text()="school-003"]`)),
		chromedp.WaitVisible(chromedp.Search(`//h2[text()="Last runs"]`)))
	nodePage := text("main")
	do("open the pending page", chromedp.Click(chromedp.Search(`//nav/a[text()="Pending"]`)), chromedp.WaitVisible(chromedp.CSS("table.pending")))
	pending := text("table.pending")
	do("approve school-005", chromedp.Click(chromedp.Search(`//tr[td/a[text()="school-005"]]//button[text()="Approve"]`)),
		chromedp.WaitVisible(chromedp.Search(`//td[contains(text(), "No node is waiting")]`)))
	after := text("table.pending")
	if !strings.HasSuffix(loginURL, "/ui/login") {
		t.Errorf("without a session the browser was at %s, want the login page", loginURL)
	}
	for _, want := range []string{"3 in sync", "1 failing", "1 pending approval", "school-003", "Escuela N° 212 Los Andes", "the latest release is 1"} {
		if !strings.Contains(strings.Join(strings.Fields(fleet), " "), want) {
			t.Errorf("the fleet page lacks %q:\n%s", want, fleet)
		}
	}
	for _, want := range []string{"squid: the web filter's configuration does not load", "service.squid", "squid.conf line 12: unknown directive"} {
		if !strings.Contains(nodePage, want) {
			t.Errorf("the failing school's page lacks %q", want)
		}
	}
	if !strings.Contains(pending, "school-005") || strings.Contains(after, "school-005") {
		t.Errorf("pending before: %q; after approving: %q", pending, after)
	}
	if n, _ := s.node(t, "school-005"); n.State != registry.Approved {
		t.Errorf("school-005 is %s after its approval in the browser", n.State)
	}
	path := os.Getenv("SATCHEL_SCREENSHOT")
	if path == "" {
		path = filepath.Join(os.TempDir(), "satchel-dashboard-fleet.png")
	}
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("the fleet page's screenshot: %s (%d bytes)", path, len(shot))
}

// publish publishes a config of these files through the admin API (forced: whatever the
// nodes' facts).
func (s *testServer) publish(t *testing.T, notes string, files map[string]string) api.ReleaseResult {
	t.Helper()
	config := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(config, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var tarball bytes.Buffer
	if err := dirtar.Pack(&tarball, config); err != nil {
		t.Fatal(err)
	}
	res, refused, err := s.admin.Release(context.Background(), api.ReleaseRequest{Config: tarball.Bytes(), Notes: notes, Force: true})
	if err != nil || refused {
		t.Fatalf("release: refused %v, %v", refused, err)
	}
	return res
}
