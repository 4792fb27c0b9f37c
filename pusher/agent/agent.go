package agent

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/internal/atomicfile"
	"github.com/ingotfleet/ingot/internal/glob"
	"github.com/ingotfleet/ingot/internal/pki"
	"github.com/ingotfleet/ingot/internal/rate"
	"github.com/ingotfleet/ingot/pusher"
	"github.com/ingotfleet/ingot/pusher/api"
	"github.com/ingotfleet/ingot/pusher/fetch"
	"github.com/ingotfleet/ingot/pusher/signing"
)

// Agent is the daemon on a host: a pusher.Syncer behind an API.
type Agent struct {
	Config *Config
	Syncer *pusher.Syncer
	Log    *slog.Logger
	tls    *tls.Config
	source *fetch.StoreSource // nil when the config names no store
	down   *rate.Limiter
	// Slots, when set, does the slot syncs and serves /v1/slots/.
	Slots SlotManager

	mu         sync.Mutex
	running    bool
	runID      int64
	last       *api.Result
	lastID     int64
	started    time.Time
	indicators indicatorState

	// metrics is what GET /metrics serves (metrics.go).
	metrics *agentMetrics
}

// New makes an agent from its config.
func New(c *Config, log *slog.Logger) (*Agent, error) {
	keys, err := signing.LoadPublicKeys(c.TrustedKeys...)
	if err != nil {
		return nil, err
	}
	local, err := c.localGlobs()
	if err != nil {
		return nil, err
	}
	cross, _ := glob.CompileSet(c.CrossMounts)
	down, _ := rate.Parse(c.Limits.Download)
	write, _ := rate.Parse(c.Limits.Write)
	a := &Agent{Config: c, Log: log, started: time.Now()}
	a.metrics = newAgentMetrics(a)
	a.Syncer = &pusher.Syncer{
		Root: c.Root, StateDir: c.StateDir, Local: local, Cross: cross,
		Trusted: keys, Triggers: c.Triggers, Concurrency: c.Limits.Concurrency,
		WriteLimit: rate.New(write), Log: log,
	}
	if c.TLS.CA != "" {
		a.tls, err = pki.ServerTLS(c.TLS.CA, c.TLS.Cert, c.TLS.Key)
		if err != nil {
			return nil, err
		}
	}
	a.down = rate.New(down)
	if len(c.Stores) > 0 {
		if a.source, err = fetch.OpenSource(c.Stores, a.sourceOptions(a.down)); err != nil {
			return nil, err
		}
	}
	a.last = a.Syncer.LastResult()
	return a, nil
}

func (a *Agent) sourceOptions(limit *rate.Limiter) fetch.SourceOptions {
	return fetch.SourceOptions{Limit: limit, Retries: a.Config.Retries, Backoff: a.Config.Backoff, Log: a.Log}
}

// Lower makes the agent's work yield to the host's: nice and idle I/O
// priority, as configured.
func (a *Agent) Lower() error {
	if n := a.Config.Limits.Nice; n != 0 {
		if err := unix.Setpriority(unix.PRIO_PROCESS, 0, n); err != nil {
			return fmt.Errorf("nice: %w", err)
		}
	}
	if a.Config.Limits.IdleIO {
		const ioprioClassIdle, ioprioWhoProcess = 3, 1
		if _, _, e := unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, 0, ioprioClassIdle<<13); e != 0 {
			return fmt.Errorf("ioprio_set: %w", e)
		}
	}
	return nil
}

// Status reports the agent's state.
func (a *Agent) Status() api.Status {
	st, _ := a.Syncer.LoadState()
	a.mu.Lock()
	s := api.Status{Name: a.Config.Name, Syncing: a.running, LastID: a.lastID, RunID: a.runID, Last: a.last, Progress: a.Syncer.Progress()}
	a.mu.Unlock()
	if !st.Image.IsZero() {
		s.Image = st.Image.String()
	}
	if !st.Previous.IsZero() {
		s.Previous = st.Previous.String()
	}
	s.Healthy = s.Last == nil || s.Last.OK
	a.slotStatus(&s)
	return s
}

// start runs fn in the background unless a sync is running; it returns
// the run's id.
func (a *Agent) start(ctx context.Context, fn func(ctx context.Context) api.Result) (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.running {
		return 0, pusher.ErrBusy
	}
	a.running = true
	a.runID++
	id := a.runID
	go func() {
		res := fn(ctx)
		a.metrics.finished(res)
		if a.Log != nil {
			a.Log.Info("sync finished", "image", res.Image, "ok", res.OK, "error", res.Error, "changed", res.Changed, "seconds", res.Seconds)
		}
		a.mu.Lock()
		a.running = false
		a.last = &res
		a.lastID = id
		a.mu.Unlock()
	}()
	return id, nil
}

// StartSync begins a sync to an image in the background.
func (a *Agent) StartSync(ctx context.Context, req api.SyncRequest) (int64, error) {
	d, err := images.ParseDigest(req.Image)
	if err != nil {
		return 0, fmt.Errorf("image: %w", err)
	}
	if req.Ref != "" {
		if _, _, err := store.ParseRef(req.Ref); err != nil {
			return 0, err
		}
	}
	bps, err := rate.Parse(req.BWLimit)
	if err != nil {
		return 0, err
	}
	if err := a.checkSlotRequest(req); err != nil {
		return 0, err
	}
	src := a.source
	if len(req.Stores) > 0 || bps > 0 {
		stores := req.Stores
		if len(stores) == 0 {
			stores = a.Config.Stores
		}
		limit := a.down
		if bps > 0 {
			limit = rate.New(bps)
		}
		if src, err = fetch.OpenSource(stores, a.sourceOptions(limit)); err != nil {
			return 0, err
		}
	}
	if src == nil {
		return 0, errors.New("no store: the agent's config names none and the request gives none")
	}
	return a.start(ctx, func(ctx context.Context) api.Result {
		if src != a.source {
			// This request's own source, read-only: nothing to lose.
			defer func() { _ = src.Close() }()
		}
		opts := pusher.SyncOptions{DryRun: req.DryRun, Ref: req.Ref, AllowRollback: req.AllowRollback}
		if req.Slot != "" {
			return a.Slots.SyncSlot(ctx, d, src, opts, req.Switch)
		}
		return a.Syncer.Sync(ctx, d, src, opts)
	})
}

// StartRollback begins a rollback in the background.
func (a *Agent) StartRollback(ctx context.Context) (int64, error) {
	return a.start(ctx, func(ctx context.Context) api.Result {
		a.metrics.rollbacks.Inc()
		return a.Syncer.Rollback(ctx)
	})
}

// Handler is the agent's API.
func (a *Agent) Handler(ctx context.Context) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		s := a.Status()
		s.Indicators = a.Indicators(r.Context())
		writeJSONResponse(w, http.StatusOK, s)
	})
	mux.HandleFunc("POST /v1/sync", func(w http.ResponseWriter, r *http.Request) {
		var req api.SyncRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
			writeJSONResponse(w, http.StatusBadRequest, map[string]string{"error": "bad request: " + err.Error()})
			return
		}
		id, err := a.StartSync(ctx, req)
		a.reply(w, id, err)
	})
	mux.HandleFunc("POST /v1/rollback", func(w http.ResponseWriter, r *http.Request) {
		id, err := a.StartRollback(ctx)
		a.reply(w, id, err)
	})
	mux.Handle("GET /metrics", a.metrics.handler())
	a.slotRoutes(mux)
	return mux
}

func (a *Agent) reply(w http.ResponseWriter, id int64, err error) {
	switch {
	case errors.Is(err, pusher.ErrBusy):
		writeJSONResponse(w, http.StatusConflict, map[string]string{"error": err.Error()})
	case err != nil:
		writeJSONResponse(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
	default:
		writeJSONResponse(w, http.StatusAccepted, map[string]int64{"id": id})
	}
}

func writeJSONResponse(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // a client gone away has nothing to read it
}

// Serve recovers an interrupted commit, then serves the API on the
// configured address until ctx ends. ready, when set, receives the
// listening address.
func (a *Agent) Serve(ctx context.Context, ready func(addr string)) error {
	if _, err := a.Syncer.Recover(ctx); err != nil {
		// The agent serves anyway: the error is in its log and status
		// (last result), and a controller can still sync or roll back.
		if a.Log != nil {
			a.Log.Error("recovering an interrupted commit failed", "err", err)
		}
		a.mu.Lock()
		a.last = &api.Result{Error: err.Error()}
		if st, serr := a.Syncer.LoadState(); serr == nil {
			a.last.Image = st.Image.String()
		}
		a.mu.Unlock()
	}
	if a.tls == nil {
		return errors.New("the agent's API needs tls.ca, tls.cert and tls.key")
	}
	ln, err := net.Listen("tcp", a.Config.Listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: a.Handler(ctx), TLSConfig: a.tls, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slogErrorLog(a.Log)}
	if a.Config.AddrFile != "" {
		if err := atomicfile.WriteFile(a.Config.AddrFile, []byte(ln.Addr().String()), 0o644); err != nil {
			_ = ln.Close() // never served: the error is err
			return err
		}
	}
	if ready != nil {
		ready(ln.Addr().String())
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil && a.Log != nil {
			a.Log.Warn("shutting the API down", "err", err)
		}
	}()
	err = srv.ServeTLS(ln, "", "")
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
