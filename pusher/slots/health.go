package slots

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/ingotfleet/ingot/pusher/agent"
	"github.com/ingotfleet/ingot/triggers"
)

// Check runs one health check once.
func Check(ctx context.Context, h agent.HealthCheck) error {
	to := h.Timeout
	if to <= 0 {
		to = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, to)
	defer cancel()
	name := h.Name
	switch {
	case h.HTTP != "":
		if name == "" {
			name = h.HTTP
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.HTTP, nil)
		if err != nil {
			return fmt.Errorf("check %s: %w", name, err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("check %s: %w", name, err)
		}
		_ = resp.Body.Close() // only the status is read
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("check %s: %s", name, resp.Status)
		}
	case h.TCP != "":
		if name == "" {
			name = h.TCP
		}
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", h.TCP)
		if err != nil {
			return fmt.Errorf("check %s: %w", name, err)
		}
		_ = c.Close() // the connect was the check
	case len(h.Command) > 0:
		if name == "" {
			name = h.Command[0]
		}
		out, err := triggers.GroupCommand(ctx, h.Command).CombinedOutput()
		if err != nil {
			if len(out) > 500 {
				out = out[len(out)-500:]
			}
			return fmt.Errorf("check %s: %w: %s", name, err, out)
		}
	default:
		return errors.New("check: nothing to check")
	}
	return nil
}

// WaitHealthy runs the checks every poll until one round passes them all
// or the deadline comes; it returns the last round's first failure.
func WaitHealthy(ctx context.Context, checks []agent.HealthCheck, deadline time.Time, poll time.Duration) error {
	for {
		var failed error
		for _, h := range checks {
			if err := Check(ctx, h); err != nil {
				failed = err
				break
			}
		}
		if failed == nil {
			return nil
		}
		if time.Now().Add(poll).After(deadline) {
			return fmt.Errorf("not healthy by the deadline: %w", failed)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}
