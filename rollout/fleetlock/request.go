package fleetlock

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ProtocolHeader must be present, with the value "true", on every lock and
// unlock request: it shows the request was meant for a FleetLock server
// and did not arrive through a redirect.
const ProtocolHeader = "fleet-lock-protocol"

// MaxBody is the largest request body read; a FleetLock body is a few
// dozen bytes.
const MaxBody = 16 << 10

// maxField bounds the id and the group.
const maxField = 253

// ClientParams is what a FleetLock client says about itself.
type ClientParams struct {
	// ID names the client; here, the host's name in the inventory.
	ID string `json:"id"`
	// Group is the client's reboot group (Zincati's default: "default").
	Group string `json:"group"`
}

type requestBody struct {
	ClientParams *ClientParams `json:"client_params"`
}

// RequestError is a request refused before it reached the slots: Kind is
// the FleetLock error kind, Status the HTTP status to answer with.
type RequestError struct {
	Status int
	Kind   string
	Msg    string
}

func (e *RequestError) Error() string { return e.Msg }

func badRequest(format string, args ...any) error {
	return &RequestError{Status: http.StatusBadRequest, Kind: "bad_request", Msg: fmt.Sprintf(format, args...)}
}

// DecodeRequest checks a lock or unlock request's protocol header and
// reads its body: one JSON object with client_params.id and
// client_params.group, both non-empty, the group made of letters, digits,
// dots and dashes. Unknown fields are ignored, as the protocol allows
// clients to grow; anything else is a *RequestError.
func DecodeRequest(h http.Header, body io.Reader) (ClientParams, error) {
	vals := h.Values(ProtocolHeader)
	if len(vals) == 0 {
		return ClientParams{}, &RequestError{Status: http.StatusBadRequest, Kind: "missing_protocol_header",
			Msg: "the request lacks the header `fleet-lock-protocol: true`"}
	}
	if len(vals) != 1 || !strings.EqualFold(strings.TrimSpace(vals[0]), "true") {
		return ClientParams{}, &RequestError{Status: http.StatusBadRequest, Kind: "missing_protocol_header",
			Msg: fmt.Sprintf("header fleet-lock-protocol is %q, it must be \"true\"", strings.Join(vals, ", "))}
	}
	data, err := io.ReadAll(io.LimitReader(body, MaxBody+1))
	if err != nil {
		return ClientParams{}, badRequest("reading the request body: %v", err)
	}
	if len(data) > MaxBody {
		return ClientParams{}, &RequestError{Status: http.StatusRequestEntityTooLarge, Kind: "bad_request",
			Msg: fmt.Sprintf("request body over %d bytes", MaxBody)}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return ClientParams{}, badRequest(`empty request body; want {"client_params":{"id":"HOST","group":"GROUP"}}`)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var rb requestBody
	if err := dec.Decode(&rb); err != nil {
		return ClientParams{}, badRequest("request body is not a FleetLock JSON object: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return ClientParams{}, badRequest("request body has data after the JSON object")
	}
	if rb.ClientParams == nil {
		return ClientParams{}, badRequest("request body lacks client_params")
	}
	p := *rb.ClientParams
	if err := checkField("client_params.id", p.ID, validID); err != nil {
		return ClientParams{}, err
	}
	if err := checkField("client_params.group", p.Group, validGroup); err != nil {
		return ClientParams{}, err
	}
	return p, nil
}

func checkField(name, v string, valid func(string) string) error {
	switch {
	case v == "":
		return badRequest("%s is missing or empty", name)
	case len(v) > maxField:
		return badRequest("%s is %d bytes long, at most %d", name, len(v), maxField)
	}
	if why := valid(v); why != "" {
		return badRequest("%s %q %s", name, v, why)
	}
	return nil
}

// validID accepts any printable text without spaces: ids are host names
// or machine ids.
func validID(s string) string {
	if !utf8.ValidString(s) {
		return "is not UTF-8"
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return "holds a space or an unprintable character"
		}
	}
	return ""
}

// validGroup is the protocol's ^[a-zA-Z0-9.-]+$.
func validGroup(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return "may hold only letters, digits, '.' and '-'"
		}
	}
	return ""
}
