package pusher

import "github.com/ingotfleet/ingot/internal/rate"

// The agent's limits use ingot's one token bucket (internal/rate), the
// same as `ingot serve --bwlimit`; these names keep the pusher's code
// short.

// Limiter is a token bucket of bytes; a nil *Limiter lets everything through.
type Limiter = rate.Limiter

// NewLimiter returns a bucket of bytes per second (nil for rate <= 0).
func NewLimiter(bytesPerSecond int64) *Limiter { return rate.New(bytesPerSecond) }

// ParseRate parses "10M", "500k", "1.5G", "123" (bytes per second; k, M
// and G are powers of 1024). "" and "0" mean unlimited.
func ParseRate(s string) (int64, error) { return rate.Parse(s) }
