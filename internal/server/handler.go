package server

import (
	"net/http"

	"github.com/satchelcm/satchel/internal/api"
	"github.com/satchelcm/satchel/internal/dashboard"
)

// Handler returns the server's HTTP handler: every endpoint of package api.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, h http.Handler) { mux.Handle(pattern, s.metrics.route(pattern, h)) }
	handle("POST "+api.PathEnroll, s.serve(s.enroll))

	handle("GET "+api.PathRepo, s.node(s.repoFile))
	handle("PUT "+api.PathFacts, s.node(s.putFacts))
	handle("POST "+api.PathReports, s.node(s.putReport))
	handle("POST "+api.PathRenew, s.node(s.renew))

	handle("GET "+api.PathAdminNodes, s.adminOnly(s.listNodes))
	handle("GET "+api.PathAdminFleet, s.adminOnly(s.getFleet))
	handle("GET "+api.PathAdminNodes+"/{name}", s.adminOnly(s.getNode))
	handle("DELETE "+api.PathAdminNodes+"/{name}", s.adminOnly(s.forgetNode))
	handle("POST "+api.PathAdminNodes+"/{name}/approve", s.adminOnly(s.approveNode))
	handle("POST "+api.PathAdminNodes+"/{name}/revoke", s.adminOnly(s.revokeNode))
	handle("GET "+api.PathAdminNodes+"/{name}/reports", s.adminOnly(s.listReports))
	handle("POST "+api.PathAdminReleases, s.adminOnly(s.postRelease))
	handle("GET "+api.PathAdminReleases, s.adminOnly(s.listReleases))
	handle("POST "+api.PathAdminBundles, s.adminOnly(s.postBundle))
	handle("GET "+api.PathAdminRepo, s.adminOnly(s.adminRepoFile))
	handle("POST "+api.PathAdminReturns, s.adminOnly(s.postReturns))
	handle("GET "+api.PathAdminTokens, s.adminOnly(s.listTokens))
	handle("POST "+api.PathAdminTokens, s.adminOnly(s.createToken))
	handle("POST "+api.PathAdminTokens+"/{hash}/revoke", s.adminOnly(s.revokeToken))

	handle("GET "+PathMetrics, s.adminOnly(func(w http.ResponseWriter, r *http.Request) error {
		s.metrics.handler().ServeHTTP(w, r)
		return nil
	}))
	mux.Handle(dashboard.Prefix, s.metrics.route(dashboard.Prefix, s.dash.Handler()))
	mux.Handle("GET /{$}", http.RedirectHandler(dashboard.Prefix, http.StatusSeeOther))
	return mux
}
