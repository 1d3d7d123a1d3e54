package reliability

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/sessionkit/sessions"
)

// Linearizability of concurrent session operations (issue 12).
//
// Clients send requests to an in-process server running the real
// middleware on a real store, each request one operation on one of a few
// shared sessions; the history of calls and answers is checked with
// porcupine against the model in linearizability_model_test.go.
//
// CI runs the short form (linShortOps operations per store); the long form:
//
//	SESSIONS_LIN_LONG=1 go test -run 'TestLinearizability' -timeout 60m ./...
//
// (SESSIONS_LIN_OPS and SESSIONS_LIN_CLIENTS override the counts). A
// history that fails the check is written as porcupine's HTML visualization
// to the test's output directory (go test -outputdir, or t.ArtifactDir when
// -artifacts is set; a temporary directory otherwise, whose path is logged).

const (
	linCookie = "sid"
	// Short form: per store, the operations and clients of one history.
	linShortOps     = 300
	linShortClients = 8
	linSlots        = 3
	// Long form.
	linLongOps     = 20000
	linLongClients = 16
	// linCheckTimeout bounds the checker (a timeout is reported, not
	// taken for a pass).
	linCheckTimeout = time.Minute
)

// linConfig is one run.
type linConfig struct {
	ops, clients, slots int
	// window is the staleness the model allows reads (0: none).
	window time.Duration
	// pause is the longest a client waits between two operations (a
	// random time up to it; 0: none).
	pause time.Duration
	// touch makes every read that can push the idle deadline write it
	// (Touch), so that touches race with everything else.
	touch bool
}

func linLong() bool { return os.Getenv("SESSIONS_LIN_LONG") == "1" }

func linDefaultConfig() linConfig {
	c := linConfig{ops: linShortOps, clients: linShortClients, slots: linSlots, touch: true}
	if linLong() {
		c.ops, c.clients = linLongOps, linLongClients
	}
	if n, err := strconv.Atoi(os.Getenv("SESSIONS_LIN_OPS")); err == nil && n > 0 {
		c.ops = n
	}
	if n, err := strconv.Atoi(os.Getenv("SESSIONS_LIN_CLIENTS")); err == nil && n > 0 {
		c.clients = n
	}
	return c
}

// linManager returns a Manager on store for the linearizability runs.
func linManager(tb testing.TB, store sessions.Store, touch bool) *sessions.Manager {
	tb.Helper()
	opts := &sessions.Options{
		CookieName:     linCookie,
		InsecureCookie: true,
		Logger:         slog.New(slog.DiscardHandler),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			code := http.StatusInternalServerError
			if errors.Is(err, sessions.ErrSessionGone) {
				code = http.StatusConflict
			}
			http.Error(w, err.Error(), code)
		},
	}
	if touch {
		opts.IdleTimeout = time.Hour
		opts.TouchInterval = time.Millisecond
	}
	m, err := sessions.New(store, opts)
	if err != nil {
		tb.Fatalf("sessions.New: %v", err)
	}
	return m
}

// linHandler serves the model's operations: /op?kind=...&key=&val=&owner=.
// The body is the JSON of a linOutput; the token of a renew or create is
// read from the response's cookie.
func linHandler(m *sessions.Manager) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/op", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		kind, owner := q.Get("kind"), q.Get("owner")
		reply := func(out linOutput) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(out)
		}
		fail := func(err error) {
			if errors.Is(err, sessions.ErrSessionGone) {
				reply(linOutput{Status: "gone"})
				return
			}
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
		if kind == "logout" {
			if _, err := m.DestroyOwner(r.Context(), owner); errors.Is(err, sessions.ErrConflict) {
				// Documented: logins kept racing the rounds; the sessions
				// that existed at the call are ended, later ones may live.
				reply(linOutput{Status: "conflict"})
				return
			} else if err != nil {
				fail(err)
				return
			}
			reply(linOutput{Status: "ok"})
			return
		}
		s := sessions.FromContext(r.Context())
		if kind == "create" {
			if err := s.RenewAfterLogin(owner); err != nil {
				fail(err)
				return
			}
			if err := s.Set("a", q.Get("val")); err != nil {
				fail(err)
				return
			}
			reply(linOutput{Status: "ok"})
			return
		}
		st, err := s.Status()
		if err != nil {
			fail(err)
			return
		}
		if st&sessions.StatusNew != 0 {
			reply(linOutput{Status: "new"})
			return
		}
		// A little jitter between the load and the save widens the
		// windows in which requests race.
		time.Sleep(time.Duration(rand.IntN(500)) * time.Microsecond)
		switch kind {
		case "get":
			a, _, err1 := sessions.Get[string](s, "a")
			b, _, err2 := sessions.Get[string](s, "b")
			n, _, err3 := sessions.Get[int](s, "n")
			if err := errors.Join(err1, err2, err3); err != nil {
				fail(err)
				return
			}
			reply(linOutput{Status: "ok", A: a, B: b, N: n})
		case "set", "del":
			if v := q.Get("val"); v == "" {
				err = s.Delete(q.Get("key"))
			} else {
				err = s.Set(q.Get("key"), v)
			}
			if err != nil {
				fail(err)
				return
			}
			reply(linOutput{Status: "ok"})
		case "incr":
			n, err := sessions.Update(s, "n", func(n int) int { return n + 1 })
			if err != nil {
				fail(err)
				return
			}
			reply(linOutput{Status: "ok", N: n})
		case "renew":
			if err := s.Renew(); err != nil {
				fail(err)
				return
			}
			reply(linOutput{Status: "ok"})
		case "destroy":
			if err := s.Destroy(); err != nil {
				fail(err)
				return
			}
			reply(linOutput{Status: "ok"})
		default:
			http.Error(w, "unknown kind", http.StatusBadRequest)
		}
	})
	return m.Handler(mux)
}

// linSlot is a shared session as the clients know it: the token of its
// current session ("" when a client must log in again).
type linSlot struct {
	mu    sync.Mutex
	token string
	// old are tokens the clients saw end or renewed, replayed now and then:
	// they must name no session.
	old []string
}

func (s *linSlot) retire(tok string) {
	if tok == "" || slices.Contains(s.old, tok) {
		return
	}
	s.old = append(s.old, tok)
	if len(s.old) > 4 {
		s.old = s.old[1:]
	}
}

// linRun records one history: cfg.clients clients doing cfg.ops operations
// in all on cfg.slots sessions, each request sent to one of urls (several
// for several instances on one store).
func linRun(tb testing.TB, cfg linConfig, urls []string) []porcupine.Operation {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: cfg.clients * 2}}
	defer client.CloseIdleConnections()
	slots := make([]*linSlot, cfg.slots)
	for i := range slots {
		slots[i] = &linSlot{}
	}
	start := time.Now()
	var (
		mu      sync.Mutex
		history []porcupine.Operation
		next    int
		errs    []error
	)
	record := func(client int, in linInput, out linOutput) {
		mu.Lock()
		history = append(history, porcupine.Operation{ClientId: client, Input: in, Call: in.Call, Output: out, Return: in.Ret})
		mu.Unlock()
	}
	take := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if next >= cfg.ops || len(errs) > 0 {
			return false
		}
		next++
		return true
	}
	do := func(url string, in *linInput) (linOutput, error) {
		q := fmt.Sprintf("%s/op?kind=%s&key=%s&val=%s&owner=u%d", url, in.Kind, in.Key, in.Val, in.Slot)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, q, nil)
		if err != nil {
			return linOutput{}, err
		}
		if in.Token != "" {
			req.AddCookie(&http.Cookie{Name: linCookie, Value: in.Token})
		}
		in.Call = int64(time.Since(start))
		resp, err := client.Do(req)
		if err != nil {
			return linOutput{}, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		in.Ret = int64(time.Since(start))
		if err != nil {
			return linOutput{}, err
		}
		var out linOutput
		switch resp.StatusCode {
		case http.StatusOK:
			if err := json.Unmarshal(body, &out); err != nil {
				return linOutput{}, fmt.Errorf("%s: %w: %q", in.Kind, err, body)
			}
		case http.StatusConflict:
			out.Status = "gone"
		default:
			return linOutput{}, fmt.Errorf("%s: HTTP %d: %s", in.Kind, resp.StatusCode, body)
		}
		for _, c := range resp.Cookies() {
			if c.Name == linCookie && c.Value != "" && c.MaxAge >= 0 {
				out.Token = c.Value
			}
		}
		if in.Kind != linRenew && in.Kind != linCreate {
			out.Token = "" // a touch or a re-sent cookie: same token
		}
		return out, nil
	}
	var wg sync.WaitGroup
	for c := range cfg.clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), uint64(start.UnixNano())))
			for take() {
				if cfg.pause > 0 {
					time.Sleep(rand.N(cfg.pause))
				}
				sl := rng.IntN(cfg.slots)
				slot := slots[sl]
				url := urls[rng.IntN(len(urls))]
				in := linInput{Slot: sl}
				slot.mu.Lock()
				tok := slot.token
				in.Token = tok
				if in.Token == "" {
					// Log in again, holding the slot so that one client does.
					in.Kind, in.Val = linCreate, "c"+strconv.Itoa(rng.IntN(1000))
					out, err := do(url, &in)
					if err == nil {
						slot.token = out.Token
						record(c, in, out)
					}
					slot.mu.Unlock()
					if err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
					continue
				}
				if len(slot.old) > 0 && rng.IntN(100) < 5 {
					in.Token = slot.old[rng.IntN(len(slot.old))]
				}
				slot.mu.Unlock()
				switch p := rng.IntN(100); {
				case p < 35:
					in.Kind = linGet
				case p < 55:
					in.Kind, in.Key, in.Val = linSet, []string{"a", "b"}[rng.IntN(2)], "v"+strconv.Itoa(rng.IntN(5))
				case p < 62:
					in.Kind, in.Key = linDel, []string{"a", "b"}[rng.IntN(2)]
				case p < 82:
					in.Kind = linIncr
				case p < 92:
					in.Kind = linRenew
				case p < 97:
					in.Kind = linDestroy
				default:
					in.Kind, in.Token = linLogout, ""
				}
				used := in.Token
				if in.Kind == linLogout {
					used = tok // the session the logout must end
				}
				out, err := do(url, &in)
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					continue
				}
				record(c, in, out)
				// An operation that proves used dead retires it, and moves the
				// slot on if it still names used. (A slot never names two live
				// sessions: a client logs in again only when the slot names
				// none, so the model's one session per slot holds.)
				slot.mu.Lock()
				renewed := in.Kind == linRenew && out.Status == "ok"
				if renewed || out.Status == "new" || out.Status == "gone" ||
					out.Status == "ok" && (in.Kind == linDestroy || in.Kind == linLogout) {
					slot.retire(used)
					if slot.token == used {
						slot.token = ""
						if renewed {
							slot.token = out.Token
						}
					}
				}
				slot.mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		tb.Fatalf("%d requests failed, the first: %v", len(errs), errs[0])
	}
	return history
}

// linCheck checks history with the model for window and reports the
// result; a failing history is written as porcupine's HTML visualization
// into dir (the test's output directory when dir is "") and its path
// returned.
func linCheck(tb testing.TB, history []porcupine.Operation, window time.Duration, dir string) (porcupine.CheckResult, string) {
	tb.Helper()
	linDoom(history)
	var maxDur int64
	for _, op := range history {
		maxDur = max(maxDur, op.Return-op.Call)
	}
	model := linModel(int64(window), maxDur)
	t0 := time.Now()
	res, info := porcupine.CheckOperationsVerbose(model, history, linCheckTimeout)
	tb.Logf("%d operations checked in %v: %s", len(history), time.Since(t0).Round(time.Millisecond), res)
	if res == porcupine.Ok {
		return res, ""
	}
	if dir == "" {
		dir = linOutputDir(tb)
	}
	path := filepath.Join(dir, linFileName(tb.Name())+".html")
	if err := porcupine.VisualizePath(model, info, path); err != nil {
		tb.Errorf("visualization: %v", err)
		return res, ""
	}
	tb.Logf("visualization of the history: %s", path)
	linDump(tb, model, history, path+".txt")
	return res, path
}

// linOutputDir is where failing histories go: go test's -outputdir when
// set (the test binary runs with it as its working directory's
// "testing.outputdir" flag), else a temporary directory kept after the
// test.
func linOutputDir(tb testing.TB) string {
	if f := flag.Lookup("test.outputdir"); f != nil && f.Value.String() != "" {
		return f.Value.String()
	}
	dir, err := os.MkdirTemp("", "linearizability-")
	if err != nil {
		tb.Fatalf("output dir: %v", err)
	}
	return dir
}

func linFileName(name string) string {
	b := []byte(name)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b)
}

// linServers starts n instances (Managers) on stores(i) and returns their
// URLs.
func linServers(tb testing.TB, n int, touch bool, store func(i int) sessions.Store) []string {
	tb.Helper()
	urls := make([]string, n)
	for i := range n {
		srv := httptest.NewServer(linHandler(linManager(tb, store(i), touch)))
		tb.Cleanup(srv.Close)
		urls[i] = srv.URL
	}
	return urls
}

// linExpect runs cfg on one instance of store and requires a linearizable
// history.
func linExpect(t *testing.T, store sessions.Store, cfg linConfig) {
	t.Helper()
	urls := linServers(t, 1, cfg.touch, func(int) sessions.Store { return store })
	h := linRun(t, cfg, urls)
	linSummary(t, h)
	if res, _ := linCheck(t, h, 0, ""); res != porcupine.Ok {
		t.Fatalf("history not linearizable (%s)", res)
	}
}

// linSummary logs the counts of the history's operations and outcomes.
func linSummary(tb testing.TB, h []porcupine.Operation) {
	tb.Helper()
	counts := map[string]int{}
	for _, op := range h {
		counts[op.Input.(linInput).Kind.String()+":"+op.Output.(linOutput).Status]++
	}
	tb.Logf("history: %d operations %v", len(h), counts)
}

// linDump writes the operations of the history's failing partitions,
// sorted by call, as text to path.
func linDump(tb testing.TB, model porcupine.Model, history []porcupine.Operation, path string) {
	var b strings.Builder
	for _, part := range model.Partition(history) {
		if porcupine.CheckOperationsTimeout(model, part, 10*time.Second) == porcupine.Ok {
			continue
		}
		ops := slices.Clone(part)
		slices.SortFunc(ops, func(x, y porcupine.Operation) int { return cmp.Compare(x.Call, y.Call) })
		fmt.Fprintf(&b, "partition of slot %d: %d operations\n", ops[0].Input.(linInput).Slot, len(ops))
		for _, op := range ops {
			fmt.Fprintf(&b, "%10.3fms %10.3fms  c%-2d %s\n", float64(op.Call)/1e6, float64(op.Return)/1e6, op.ClientId,
				model.DescribeOperation(op.Input, op.Output))
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		tb.Logf("dump: %v", err)
		return
	}
	tb.Logf("failing partitions as text: %s", path)
}
