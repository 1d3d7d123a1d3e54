//go:build unix

package e2e

import (
	"os"
	"slices"
	"testing"
)

// postgresNear is the postgres kind with pgxstore.NearCache in front
// (-store postgres-near, -cache-age as the hard bound). It counts as a
// cache kind: the cases that wait out -cache-age for an outage, and the
// two-instance case that checks what one instance sees of the other's
// writes, apply to it.
var postgresNear = &storeKind{
	name:       "postgres-near",
	persistent: true,
	cache:      true,
	setup: func(t *testing.T) ([]string, func(*testing.T) int) {
		flags, count := setupPostgres(t)
		return withStore(flags, "postgres-near"), count
	},
	unreachable: func(t *testing.T, addr string) []string {
		return withStore(unreachablePostgres(t, addr), "postgres-near")
	},
	serviceAddr: postgresAddr,
	dsnVia:      postgresVia,
}

// withStore returns flags with the value of -store replaced by kind.
func withStore(flags []string, kind string) []string {
	out := slices.Clone(flags)
	for i := 0; i+1 < len(out); i++ {
		if out[i] == "-store" {
			out[i+1] = kind
		}
	}
	return out
}

// nearCases are the cases TestE2EPostgresNear runs by default: every case
// that runs several instances on one store (multi/...), the outages (the
// listening connection goes through the proxy too), and the writes whose
// compare-and-set a stale copy must not defeat. SESSIONS_E2E_NEAR=all runs
// the whole suite.
var nearCases = map[string]string{
	"CacheInstances":    "multi",
	"ConcurrentStart":   "multi",
	"OutagePaused":      "outage",
	"OutageKilled":      "outage",
	"Incr":              "single",
	"ConcurrentIncr":    "single",
	"SlowVersusDestroy": "single",
	"SlowVersusRenew":   "single",
	"Renew":             "single",
	"Destroy":           "single",
	"LogoutAllLive":     "single",
}

// TestE2EPostgresNear runs the near-cache kind through the suite's cases
// (see nearCases), as TestE2E runs the other kinds.
func TestE2EPostgresNear(t *testing.T) {
	k := postgresNear
	all := os.Getenv("SESSIONS_E2E_NEAR") == "all"
	for _, c := range cases {
		group, ok := nearCases[c.name]
		if !ok {
			if !all {
				continue
			}
			group = "other"
		}
		t.Run(group+"/"+c.name, func(t *testing.T) {
			if c.skip != nil {
				if why := c.skip(k); why != "" {
					t.Skipf("%s: %s", k.name, why)
				}
			}
			t.Parallel()
			if c.bare {
				c.run(t, &env{kind: k})
				return
			}
			c.run(t, newEnv(t, k))
		})
	}
}
