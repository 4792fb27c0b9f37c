package agentclient

import (
	"context"
	"net/http"
)

// SlotStatus reads an agent's slots (GET /v1/slots/status) into out
// (a slots.Status).
func (c *Client) SlotStatus(ctx context.Context, addr string, out any) error {
	return c.call(ctx, http.MethodGet, addr, "/v1/slots/status", nil, out)
}

// SlotAction asks an agent to "switch", "commit" or "rollback" its slots;
// out receives the slots' status after it.
func (c *Client) SlotAction(ctx context.Context, addr, action string, out any) error {
	return c.call(ctx, http.MethodPost, addr, "/v1/slots/"+action, struct{}{}, out)
}
