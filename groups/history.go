package groups

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Defaults of HistoryConfig.
const (
	DefaultSampleInterval = 10 * time.Second
	DefaultHistoryWindow  = 30 * time.Minute
	DefaultMaxGroups      = 1000
)

// HistoryConfig configures a History.
type HistoryConfig struct {
	// Interval between two samples. Default DefaultSampleInterval.
	Interval time.Duration
	// Window is how far back the history goes. Default DefaultHistoryWindow.
	Window time.Duration
	// MaxGroups caps the groups followed; past it, groups seen later are not
	// sampled. Default DefaultMaxGroups. Memory is bounded by MaxGroups ×
	// Window/Interval points.
	MaxGroups int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Point is one sample of a group's total lag.
type Point struct {
	Time time.Time `json:"t"`
	Lag  int64     `json:"lag"`
}

// History samples the total lag of every group every Interval and keeps
// the samples of the last Window, in bounded memory.
type History struct {
	adm *kadm.Client
	cfg HistoryConfig
	cap int

	mu     sync.Mutex
	groups map[string]*ring
}

// ring is a fixed-size circular buffer of points.
type ring struct {
	points []Point
	next   int
	full   bool
}

func (r *ring) add(p Point) {
	r.points[r.next] = p
	r.next = (r.next + 1) % len(r.points)
	r.full = r.full || r.next == 0
}

func (r *ring) slice(since time.Time) []Point {
	var out []Point
	n := r.next
	if r.full {
		n = len(r.points)
	}
	for i := range n {
		idx := i
		if r.full {
			idx = (r.next + i) % len(r.points)
		}
		if p := r.points[idx]; !p.Time.Before(since) {
			out = append(out, p)
		}
	}
	return out
}

// NewHistory returns a History sampling the groups of adm's cluster; call
// Run to sample in the background, or Sample to take one sample.
func NewHistory(adm *kadm.Client, cfg HistoryConfig) (*History, error) {
	if cfg.Interval < 0 || cfg.Window < 0 || cfg.MaxGroups < 0 {
		return nil, fmt.Errorf("groups.HistoryConfig: Interval, Window and MaxGroups may not be negative")
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultSampleInterval
	}
	if cfg.Window == 0 {
		cfg.Window = DefaultHistoryWindow
	}
	if cfg.MaxGroups == 0 {
		cfg.MaxGroups = DefaultMaxGroups
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &History{adm: adm, cfg: cfg, cap: int(cfg.Window/cfg.Interval) + 1, groups: map[string]*ring{}}, nil
}

// Interval is the time between two samples.
func (h *History) Interval() time.Duration { return h.cfg.Interval }

// Run samples every Interval until ctx ends. A failed sample is skipped.
func (h *History) Run(ctx context.Context) {
	tick := time.NewTicker(h.cfg.Interval)
	defer tick.Stop()
	for {
		_ = h.Sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Sample takes one sample of every group's total lag. Groups that have
// left the cluster are forgotten once their last point is older than the
// window.
func (h *History) Sample(ctx context.Context) error {
	list, err := List(ctx, h.adm)
	if err != nil {
		return err
	}
	now := h.cfg.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	seen := make(map[string]bool, len(list))
	for _, g := range list {
		seen[g.Group] = true
		r, ok := h.groups[g.Group]
		if !ok {
			if len(h.groups) >= h.cfg.MaxGroups {
				continue
			}
			r = &ring{points: make([]Point, h.cap)}
			h.groups[g.Group] = r
		}
		r.add(Point{Time: now, Lag: g.Lag})
	}
	since := now.Add(-h.cfg.Window)
	for name, r := range h.groups {
		if !seen[name] && len(r.slice(since)) == 0 {
			delete(h.groups, name)
		}
	}
	return nil
}

// Points answers group's samples of the last Window, oldest first (none
// for a group never sampled).
func (h *History) Points(group string) []Point {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.groups[group]
	if !ok {
		return []Point{}
	}
	out := r.slice(h.cfg.Now().Add(-h.cfg.Window))
	if out == nil {
		out = []Point{}
	}
	return out
}

// Groups is how many groups the history follows.
func (h *History) Groups() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.groups)
}
