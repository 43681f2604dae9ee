package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"time"
)

// cookieName is the session cookie's.
const cookieName = "satchel_session"

// session is a logged-in operator's.
type session struct {
	ID      string
	CSRF    string // every form of the session carries it
	Expires time.Time
}

type sessionKey struct{}

func sessionOf(r *http.Request) *session {
	s, _ := r.Context().Value(sessionKey{}).(*session)
	return s
}

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// session wraps a page that needs a session: without one, a GET goes to the login page
// and anything else is refused; a POST must carry the session's CSRF token.
func (d *Dashboard) session(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := d.lookup(r)
		if s == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
				return
			}
			d.fail(w, r, http.StatusUnauthorized, "Your session has ended: log in again.")
			return
		}
		if r.Method == http.MethodPost {
			if got := r.PostFormValue("csrf"); subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRF)) != 1 {
				d.cfg.Log.Warn("dashboard: a form without this session's CSRF token", "path", r.URL.Path, "remote", r.RemoteAddr)
				d.fail(w, r, http.StatusForbidden, "This form did not come from this dashboard's page (its CSRF token does not match): nothing was done.")
				return
			}
		}
		h(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, s)))
	})
}

// lookup returns the request's live session, or nil.
func (d *Dashboard) lookup(r *http.Request) *session {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.sessions[c.Value]
	if s == nil || !d.cfg.Now().Before(s.Expires) {
		delete(d.sessions, c.Value)
		return nil
	}
	return s
}

func (d *Dashboard) loginPage(w http.ResponseWriter, r *http.Request) {
	if d.lookup(r) != nil {
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
		return
	}
	d.render(w, http.StatusOK, "login", pageData{Title: "Log in"})
}

// login opens a session for the admin token given.
func (d *Dashboard) login(w http.ResponseWriter, r *http.Request) {
	if !d.cfg.IsAdmin(r.PostFormValue("token")) {
		d.cfg.Log.Warn("dashboard: a login with a wrong token", "remote", r.RemoteAddr)
		d.render(w, http.StatusUnauthorized, "login", pageData{Title: "Log in", Data: "That is not the admin token (the token of the server's admin.json)."})
		return
	}
	now := d.cfg.Now()
	s := &session{ID: randomToken(), CSRF: randomToken(), Expires: now.Add(d.cfg.SessionLifetime)}
	d.mu.Lock()
	for id, old := range d.sessions { // the ended ones go
		if !now.Before(old.Expires) {
			delete(d.sessions, id)
		}
	}
	d.sessions[s.ID] = s
	d.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: s.ID, Path: Prefix, Expires: s.Expires,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	d.cfg.Log.Info("dashboard: logged in", "remote", r.RemoteAddr)
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	delete(d.sessions, sessionOf(r).ID)
	d.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: Prefix, MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
}
