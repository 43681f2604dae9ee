package dashboard

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/satchelcm/satchel/internal/api"
	"github.com/satchelcm/satchel/internal/pki"
	"github.com/satchelcm/satchel/internal/registry"
)

// Prefix is where the dashboard is served.
const Prefix = "/ui/"

// Defaults of Config.
const (
	DefaultSilentAfter        = 2 * time.Hour
	DefaultCourierSilentAfter = 120 * 24 * time.Hour
	DefaultSessionLifetime    = 12 * time.Hour
	DefaultPageSize           = 100
)

// Fleet is what the dashboard reads and changes: satchel server's state.
type Fleet interface {
	FleetStatus(ctx context.Context) ([]registry.NodeStatus, error)
	GetNode(ctx context.Context, name string) (registry.Node, error)
	ListReports(ctx context.Context, node string, limit int) ([]registry.Report, error)
	// SetNodeState approves or revokes a node; Forget rejects a pending one.
	SetNodeState(ctx context.Context, name string, state registry.NodeState) error
	Forget(ctx context.Context, name string) error
	// Latest is the newest release's version, 0 if none.
	Latest(ctx context.Context) (uint64, error)
	// Sites are the nodes' sites (a column of the latest release's inventory), and the
	// column's name; nil if there is none.
	Sites(ctx context.Context) (map[string]string, string, error)
	// Releases are the published releases, newest first.
	Releases(ctx context.Context) ([]api.ReleaseInfo, error)
	// ReleaseHistory is how many nodes ran each release, day by day, from since on.
	ReleaseHistory(ctx context.Context, since time.Time) ([]registry.ReleaseCount, error)
}

// Config is what the dashboard runs with.
type Config struct {
	Fleet Fleet
	// IsAdmin checks the admin token a login gives.
	IsAdmin func(token string) bool
	// SilentAfter and CourierSilentAfter: how long a network node and a courier node
	// (reached by USB stick) may go without contact before they count as silent.
	SilentAfter, CourierSilentAfter time.Duration
	SessionLifetime                 time.Duration
	PageSize                        int
	Log                             *slog.Logger
	Now                             func() time.Time
}

// Dashboard serves the pages.
type Dashboard struct {
	cfg      Config
	pages    map[string]*template.Template
	mu       sync.Mutex
	sessions map[string]*session
}

//go:embed templates/*.html
var templatesFS embed.FS

//go:embed static
var staticFS embed.FS

// New makes a dashboard.
func New(cfg Config) (*Dashboard, error) {
	if cfg.Fleet == nil || cfg.IsAdmin == nil {
		return nil, errors.New("dashboard: a fleet and an admin check are required")
	}
	if cfg.SilentAfter <= 0 {
		cfg.SilentAfter = DefaultSilentAfter
	}
	if cfg.CourierSilentAfter <= 0 {
		cfg.CourierSilentAfter = DefaultCourierSilentAfter
	}
	if cfg.SessionLifetime <= 0 {
		cfg.SessionLifetime = DefaultSessionLifetime
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = DefaultPageSize
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	d := &Dashboard{cfg: cfg, pages: map[string]*template.Template{}, sessions: map[string]*session{}}
	for _, page := range []string{"login", "fleet", "node", "pending", "releases", "error"} {
		t, err := template.New("layout.html").Funcs(d.funcs()).ParseFS(templatesFS, "templates/layout.html", "templates/"+page+".html")
		if err != nil {
			return nil, err
		}
		d.pages[page] = t
	}
	return d, nil
}

// Handler serves the dashboard's pages under Prefix.
func (d *Dashboard) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static") // embedded: cannot fail
	mux.Handle("GET "+Prefix+"static/", http.StripPrefix(Prefix+"static/", http.FileServerFS(static)))
	mux.HandleFunc("GET "+Prefix+"login", d.loginPage)
	mux.HandleFunc("POST "+Prefix+"login", d.login)
	mux.Handle("POST "+Prefix+"logout", d.session(d.logout))
	mux.Handle("GET "+Prefix+"{$}", d.session(d.fleetPage))
	mux.Handle("GET "+Prefix+"nodes/{name}", d.session(d.nodePage))
	mux.Handle("POST "+Prefix+"nodes/{name}/{action}", d.session(d.nodeAction))
	mux.Handle("GET "+Prefix+"pending", d.session(d.pendingPage))
	mux.Handle("GET "+Prefix+"releases", d.session(d.releasesPage))
	return http.NewCrossOriginProtection().Handler(securityHeaders(mux))
}

// securityHeaders sets what every page of an admin interface should carry.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'; form-action 'self'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// render writes a page; an error rendering it is logged (the status line has gone).
func (d *Dashboard) render(w http.ResponseWriter, status int, page string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := d.pages[page].Execute(w, data); err != nil {
		d.cfg.Log.Error("render page", "page", page, "err", err)
	}
}

// fail shows an error page.
func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	d.render(w, status, "error", pageData{Title: http.StatusText(status), Session: sessionOf(r), Data: msg})
}

// pageData is what every page's template gets.
type pageData struct {
	Title   string
	Nav     string // the nav entry to mark
	Session *session
	Data    any
}

func (d *Dashboard) funcs() template.FuncMap {
	return template.FuncMap{
		"ago": func(t time.Time) string { return ago(t, d.cfg.Now()) },
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "never"
			}
			return t.UTC().Format("2006-01-02 15:04 UTC")
		},
		// class is a status as a CSS class: its first word ("rolled back": "rolled").
		"class": func(v any) string { return strings.ToLower(strings.Fields(fmt.Sprint(v) + " x")[0]) },
		"short": pki.Shorten,
		"add":   func(a, b int) int { return a + b },
	}
}

// ago says how long ago t was, for people: "3 min ago", "2 days ago".
func ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "in the future"
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return plural(int(d/time.Minute), "min") + " ago"
	case d < 48*time.Hour:
		return plural(int(d/time.Hour), "hour") + " ago"
	}
	return plural(int(d/(24*time.Hour)), "day") + " ago"
}

func plural(n int, unit string) string {
	s := fmt.Sprintf("%d %s", n, unit)
	if n != 1 && unit != "min" {
		s += "s"
	}
	return s
}
