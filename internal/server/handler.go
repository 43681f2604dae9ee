package server

import (
	"net/http"

	"github.com/satchelcm/satchel/internal/api"
	"github.com/satchelcm/satchel/internal/dashboard"
)

// Handler returns the server's HTTP handler: every endpoint of package api.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST "+api.PathEnroll, s.serve(s.enroll))

	mux.Handle("GET "+api.PathRepo, s.node(s.repoFile))
	mux.Handle("PUT "+api.PathFacts, s.node(s.putFacts))
	mux.Handle("POST "+api.PathReports, s.node(s.putReport))
	mux.Handle("POST "+api.PathRenew, s.node(s.renew))

	mux.Handle("GET "+api.PathAdminNodes, s.adminOnly(s.listNodes))
	mux.Handle("GET "+api.PathAdminFleet, s.adminOnly(s.getFleet))
	mux.Handle("GET "+api.PathAdminNodes+"/{name}", s.adminOnly(s.getNode))
	mux.Handle("DELETE "+api.PathAdminNodes+"/{name}", s.adminOnly(s.forgetNode))
	mux.Handle("POST "+api.PathAdminNodes+"/{name}/approve", s.adminOnly(s.approveNode))
	mux.Handle("POST "+api.PathAdminNodes+"/{name}/revoke", s.adminOnly(s.revokeNode))
	mux.Handle("GET "+api.PathAdminNodes+"/{name}/reports", s.adminOnly(s.listReports))
	mux.Handle("POST "+api.PathAdminReleases, s.adminOnly(s.postRelease))
	mux.Handle("POST "+api.PathAdminBundles, s.adminOnly(s.postBundle))
	mux.Handle("GET "+api.PathAdminRepo, s.adminOnly(s.adminRepoFile))
	mux.Handle("POST "+api.PathAdminReturns, s.adminOnly(s.postReturns))
	mux.Handle("GET "+api.PathAdminTokens, s.adminOnly(s.listTokens))
	mux.Handle("POST "+api.PathAdminTokens, s.adminOnly(s.createToken))
	mux.Handle("POST "+api.PathAdminTokens+"/{hash}/revoke", s.adminOnly(s.revokeToken))

	mux.Handle(dashboard.Prefix, s.dash.Handler())
	mux.Handle("GET /{$}", http.RedirectHandler(dashboard.Prefix, http.StatusSeeOther))
	return mux
}
