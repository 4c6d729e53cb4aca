// Package metrics exposes ssogate's Prometheus metrics (spec section 1:
// /metrics on the HTTP listener) with client_golang.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Decisions records ext_authz decisions. It implements the decision
// observer that extauthz.Options takes.
type Decisions struct {
	total    *prometheus.CounterVec
	duration prometheus.Histogram
	children sync.Map // statusReason → prometheus.Counter
}

type statusReason struct {
	status int
	reason string
}

// New registers the decision metrics and the Go/process collectors on a
// fresh registry and returns them with the /metrics handler.
//
// Metrics:
//   - ssogate_decisions_total{status,reason}: checks answered, by HTTP
//     status (200 for allow) and policy reason code;
//   - ssogate_check_duration_seconds: time spent in Check, in seconds.
func New() (*Decisions, http.Handler) {
	reg := prometheus.NewRegistry()
	d := &Decisions{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ssogate_decisions_total",
			Help: "ext_authz checks answered, by HTTP status (200 = allow) and reason code.",
		}, []string{"status", "reason"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ssogate_check_duration_seconds",
			Help:    "Time spent deciding one ext_authz check, in seconds.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .1, .5},
		}),
	}
	reg.MustRegister(d.total, d.duration, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return d, promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// ObserveDecision counts one decision and its duration.
func (d *Decisions) ObserveDecision(status int, reason string, took time.Duration) {
	k := statusReason{status, reason}
	c, ok := d.children.Load(k)
	if !ok {
		c, _ = d.children.LoadOrStore(k, d.total.WithLabelValues(strconv.Itoa(status), reason))
	}
	c.(prometheus.Counter).Inc()
	d.duration.Observe(took.Seconds())
}
