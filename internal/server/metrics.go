package server

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/satchelcm/satchel/internal/dashboard"
)

// PathMetrics serves the server's metrics in Prometheus' format (admin bearer token).
const PathMetrics = "/metrics"

// metrics are the server's Prometheus metrics, in a registry of its own.
type metrics struct {
	reg         *prometheus.Registry
	reports     *prometheus.CounterVec   // result: stored, duplicate
	enrollments *prometheus.CounterVec   // result: approved, pending, refused
	requests    *prometheus.HistogramVec // route, code
	repoBytes   prometheus.Counter
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "satchel_reports_received_total",
			Help: "Run reports received from nodes (over the network or collected from sticks), by result: stored, or duplicate (stored before)."}, []string{"result"}),
		enrollments: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "satchel_enrollments_total",
			Help: "Enrollment requests, by result: approved (a certificate issued), pending (waiting for an operator), refused."}, []string{"result"}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "satchel_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by route and status code.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10, 60}}, []string{"route", "code"}),
		repoBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "satchel_repo_bytes_served_total",
			Help: "Bytes of the release repository (metadata, manifests, chunks, deltas, secrets) served to nodes and bundle exports."}),
	}
	m.reg.MustRegister(m.reports, m.enrollments, m.requests, m.repoBytes, fleetCollector{s},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range []string{"stored", "duplicate"} {
		m.reports.WithLabelValues(r)
	}
	for _, r := range []string{"approved", "pending", "refused"} {
		m.enrollments.WithLabelValues(r)
	}
	return m
}

// countReport counts a report received.
func (m *metrics) countReport(stored bool) {
	if stored {
		m.reports.WithLabelValues("stored").Inc()
	} else {
		m.reports.WithLabelValues("duplicate").Inc()
	}
}

// handler serves the metrics.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// route wraps a route's handler to time it.
func (m *metrics) route(pattern string, h http.Handler) http.Handler {
	return promhttp.InstrumentHandlerDuration(m.requests.MustCurryWith(prometheus.Labels{"route": pattern}), h)
}

// fleetCollector counts the nodes by status (the dashboard's), when scraped.
type fleetCollector struct{ s *Server }

var nodesDesc = prometheus.NewDesc("satchel_nodes", "Nodes by status, as the dashboard counts them.", []string{"status"}, nil)

func (fleetCollector) Describe(ch chan<- *prometheus.Desc) { ch <- nodesDesc }

func (c fleetCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sum, err := c.s.dash.Summary(ctx)
	if err != nil {
		c.s.log.Warn("metrics: the fleet", "err", err)
		ch <- prometheus.NewInvalidMetric(nodesDesc, err)
		return
	}
	for _, st := range dashboard.Statuses() {
		ch <- prometheus.MustNewConstMetric(nodesDesc, prometheus.GaugeValue, float64(sum.Counts[st]), string(st))
	}
}

// countingWriter counts the bytes of a response's body.
type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (w *countingWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}
