package bench

import (
	"context"
	"fmt"

	"github.com/plexica/eventbus"
)

// The fairness phase: paced delivery over many tenants, once with nothing
// blocked and once while one tenant's handler blocks.
const (
	// FairnessRate is the fairness phase's paced rate, events/s.
	FairnessRate = 1_000
	// FairnessTenants is how many tenants its events are spread over; one
	// of them is blocked in the second and third runs.
	FairnessTenants = 100
	// FairnessSmallCap is Delivery.MaxPending in the third run: fewer than
	// the events that arrive behind the blocked one on its partition within
	// a phase (about a third of Rate × duration), so the run shows whether
	// a stuck key stalls its partition once the cap is reached.
	FairnessSmallCap = 100
)

// Fairness compares ours's delivery latency, publish to handler, at
// FairnessRate over Tenants tenants with default options: Unblocked with
// every handler returning at once, Blocked while BlockedTenant's handler
// blocks from the first timed event until the last was sent, and
// BlockedSmallCap the same with Delivery.MaxPending SmallCap. Blocked's
// figures are the other tenants' events only.
type Fairness struct {
	Rate            int          `json:"rate"`
	Tenants         int          `json:"tenants"`
	BlockedTenant   string       `json:"blockedTenant"`
	SmallCap        int          `json:"smallCap"`
	Unblocked       DeliverySide `json:"unblocked"`
	Blocked         DeliverySide `json:"blocked"`
	BlockedSmallCap DeliverySide `json:"blockedSmallCap"`
	// RatioP95 is Blocked.P95/Unblocked.P95: what one blocked tenant costs
	// the others (lower is better; 1 is no cost); RatioP95SmallCap the
	// same for BlockedSmallCap.
	RatioP95         float64 `json:"ratioP95"`
	RatioP95SmallCap float64 `json:"ratioP95SmallCap"`
}

// fairness runs the fairness phase.
func (r *runner) fairness(ctx context.Context) (*Fairness, error) {
	tenants := tenantNames(FairnessTenants)
	f := &Fairness{Rate: FairnessRate, Tenants: FairnessTenants, BlockedTenant: tenants[0], SmallCap: FairnessSmallCap}
	step := r.step(PhaseFairness)
	blocks := fmt.Sprintf("%s's handler blocks until the last event is sent", f.BlockedTenant)
	runs := []struct {
		name, what string
		side       *DeliverySide
		blocked    string
		delivery   eventbus.Delivery
	}{
		{"unblocked", "no handler blocks", &f.Unblocked, "", eventbus.Delivery{}},
		{"blocked", blocks, &f.Blocked, f.BlockedTenant, eventbus.Delivery{}},
		{"blocked_small_cap", fmt.Sprintf("%s, MaxPending %d", blocks, f.SmallCap), &f.BlockedSmallCap, f.BlockedTenant,
			eventbus.Delivery{MaxPending: f.SmallCap}},
	}
	for _, run := range runs {
		r.progress("%s fairness at %d events/s over %d tenants, ours, %s: %s, %s",
			step, f.Rate, f.Tenants, run.name, run.what, r.cfg.Duration)
		err := r.profiled("fairness-"+run.name, func() (err error) {
			*run.side, err = r.oursPaced(ctx, pacedRun{
				topic:     r.topics.fairness(run.name),
				rate:      f.Rate,
				tenants:   tenants,
				blocked:   run.blocked,
				subscribe: r.subscribeWith(run.delivery),
			})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("fairness, %s: %w", run.name, err)
		}
		r.reportDelivery(run.name, *run.side)
	}
	f.RatioP95 = f.Blocked.P95 / f.Unblocked.P95
	f.RatioP95SmallCap = f.BlockedSmallCap.P95 / f.Unblocked.P95
	return f, nil
}
