package cas

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dist-test/dist_test/internal/blob"
	"github.com/dist-test/dist_test/isolate"
)

// gens keeps the CAS's blobs in generations, and is its garbage collector:
// blobs that no submitted job used for [isolate] retention_days are deleted.
//
// The store is all the isolate server has (no database, possibly several
// servers sharing one S3 bucket), and S3 cannot delete "if not touched
// since": a collector that reads a blob's age and then deletes it races
// with the client told, in between, that the blob is there. So nothing is
// ever deleted by age of one blob. Instead, time is cut into generations of
// R = retention days; a blob lives at cas/<gen>/<digest>, where gen names
// the days [start, start+R) in which it was last written or refreshed. It
// is a copying collector:
//
//   - Writes go to the current generation. Every answer that promises a
//     blob is there (missing-queries, uploads of a blob already stored, the
//     master's check of a job's manifests) first makes sure it is in the
//     current generation, copying it forward from an older live one.
//   - Marking: a job's use of a manifest (the master checks every
//     isolate_hash at submission) refreshes the manifest and, transitively,
//     every blob it and its includes name, so a tree used within R days is
//     whole in a live generation, whichever of its files clients asked for.
//   - Sweeping: a generation is dead once R days have passed since it ended;
//     dead generations are deleted whole. Lookups never read a dead one.
//
// Why that is sound: a promise made at time t puts the blob in the
// generation current at t, which ends after t and stays live R days past
// its end; nothing reads or writes a dead generation, so deleting it races
// with nobody (clocks of the servers need only agree within R days). A
// blob therefore survives between R and 2R days after its last use;
// uploads in flight write into the current generation and are as safe.
// A marker casgen/<gen> is written before a generation's first blob and
// deleted after its last, so generations are found without listing blobs,
// also after retention_days changed (gen names carry their length).
//
// Retention 0 keeps everything: no generation ever dies.
type gens struct {
	store  blob.Store
	days   int // R; generations of 30 days when retention is 0
	keep   bool
	now    func() time.Time
	mu     sync.Mutex
	marked map[string]bool // markers known to exist
	live   []gen           // newest first, cached until
	until  time.Time
	trees  map[string]string // manifest → the generation it was last refreshed in
}

type gen struct{ start, days int }

func (g gen) String() string { return fmt.Sprintf("%d.%d", g.start, g.days) }

func parseGen(s string) (gen, bool) {
	a, b, ok := strings.Cut(s, ".")
	start, err1 := strconv.Atoi(a)
	days, err2 := strconv.Atoi(b)
	return gen{start, days}, ok && err1 == nil && err2 == nil && start >= 0 && days > 0
}

func newGens(store blob.Store, retentionDays int, now func() time.Time) *gens {
	g := &gens{store: store, days: retentionDays, now: now, marked: map[string]bool{}, trees: map[string]string{}}
	if retentionDays <= 0 {
		g.days, g.keep = 30, true
	}
	return g
}

func (g *gens) today() int { return int(g.now().Unix() / 86400) }

func (g *gens) current() gen {
	d := g.today()
	return gen{start: d / g.days * g.days, days: g.days}
}

// dead: R days have passed since the generation ended.
func (g *gens) dead(x gen) bool { return !g.keep && x.start+x.days+g.days <= g.today() }

func key(x gen, digest string) string { return "cas/" + x.String() + "/" + digest }

// liveGens lists the live generations, newest first, the current one
// always among them. It asks the store at most once a minute.
func (g *gens) liveGens(ctx context.Context) ([]gen, error) {
	cur := g.current()
	g.mu.Lock()
	if g.now().Before(g.until) && len(g.live) > 0 && g.live[0] == cur {
		out := g.live
		g.mu.Unlock()
		return out, nil
	}
	g.mu.Unlock()
	all := []gen{cur}
	err := g.store.List(ctx, "casgen/", func(k string, _ blob.Info) error {
		if x, ok := parseGen(strings.TrimPrefix(k, "casgen/")); ok && x != cur && !g.dead(x) {
			all = append(all, x)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(all[1:], func(a, b gen) int { return (b.start + b.days) - (a.start + a.days) })
	g.mu.Lock()
	g.live, g.until = all, g.now().Add(time.Minute)
	g.mu.Unlock()
	return all, nil
}

// locate finds the live generation holding digest.
func (g *gens) locate(ctx context.Context, digest string) (gen, blob.Info, bool, error) {
	live, err := g.liveGens(ctx)
	if err != nil {
		return gen{}, blob.Info{}, false, err
	}
	for _, x := range live {
		info, err := g.store.Stat(ctx, key(x, digest))
		if err == nil {
			return x, info, true, nil
		}
		if !errors.Is(err, blob.ErrNotFound) {
			return gen{}, blob.Info{}, false, err
		}
	}
	return gen{}, blob.Info{}, false, nil
}

// get opens digest from the live generation holding it.
func (g *gens) get(ctx context.Context, digest string) (io.ReadCloser, blob.Info, error) {
	x, _, ok, err := g.locate(ctx, digest)
	if err != nil {
		return nil, blob.Info{}, err
	}
	if !ok {
		return nil, blob.Info{}, fmt.Errorf("blob %s: %w", digest, blob.ErrNotFound)
	}
	return g.store.Get(ctx, key(x, digest))
}

// refresh makes sure digest is in the current generation, copying it
// forward if it is in an older live one; false when it is in none.
func (g *gens) refresh(ctx context.Context, digest string) (bool, error) {
	x, _, ok, err := g.locate(ctx, digest)
	if err != nil || !ok {
		return false, err
	}
	cur := g.current()
	if x == cur {
		return true, nil
	}
	rc, info, err := g.store.Get(ctx, key(x, digest))
	if errors.Is(err, blob.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	defer rc.Close()
	return true, g.put(ctx, digest, rc, info.Size)
}

// put stores a blob in the current generation.
func (g *gens) put(ctx context.Context, digest string, r io.Reader, size int64) error {
	cur := g.current()
	g.mu.Lock()
	marked := g.marked[cur.String()]
	g.mu.Unlock()
	if !marked {
		if err := g.store.Put(ctx, "casgen/"+cur.String(), bytes.NewReader(nil), 0); err != nil {
			return err
		}
		g.mu.Lock()
		g.marked[cur.String()] = true
		g.mu.Unlock()
	}
	return g.store.Put(ctx, key(cur, digest), r, size)
}

// useTree refreshes a manifest and every blob its tree names; false when
// any of them is missing (the tree cannot be fetched: archive it again).
func (g *gens) useTree(ctx context.Context, digest string) (bool, error) {
	cur := g.current().String()
	g.mu.Lock()
	done := g.trees[digest] == cur
	g.mu.Unlock()
	if done {
		// Refreshed in this generation already; only its presence matters.
		_, _, ok, err := g.locate(ctx, digest)
		return ok, err
	}
	seen := map[string]bool{}
	ok, err := g.useManifest(ctx, digest, seen)
	if ok && err == nil {
		g.mu.Lock()
		g.trees[digest] = cur
		g.mu.Unlock()
	}
	return ok, err
}

func (g *gens) useManifest(ctx context.Context, digest string, seen map[string]bool) (bool, error) {
	if seen[digest] {
		return true, nil
	}
	seen[digest] = true
	if ok, err := g.refresh(ctx, digest); !ok || err != nil {
		return false, err
	}
	rc, _, err := g.get(ctx, digest)
	if errors.Is(err, blob.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	data, err := io.ReadAll(io.LimitReader(rc, isolate.MaxManifestSize+1))
	rc.Close()
	if err != nil {
		return false, err
	}
	iso, err := isolate.ParseIsolated(data)
	if err != nil {
		// Not a manifest: nothing more to keep.
		return true, nil
	}
	var files []string
	for _, f := range iso.Files {
		if !f.IsLink() && !seen[f.Digest] {
			seen[f.Digest] = true
			files = append(files, f.Digest)
		}
	}
	found := make([]bool, len(files))
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(32)
	for i, d := range files {
		eg.Go(func() error {
			var err error
			found[i], err = g.refresh(ectx, d)
			return err
		})
	}
	if err := eg.Wait(); err != nil {
		return false, err
	}
	if slices.Contains(found, false) {
		return false, nil
	}
	for _, inc := range iso.Includes {
		if ok, err := g.useManifest(ctx, inc, seen); !ok || err != nil {
			return false, err
		}
	}
	return true, nil
}

// sweep deletes the dead generations and returns how many blobs went.
func (g *gens) sweep(ctx context.Context) (int, error) {
	if g.keep {
		return 0, nil
	}
	var dead []gen
	err := g.store.List(ctx, "casgen/", func(k string, _ blob.Info) error {
		if x, ok := parseGen(strings.TrimPrefix(k, "casgen/")); ok && g.dead(x) {
			dead = append(dead, x)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, x := range dead {
		var keys []string
		if err := g.store.List(ctx, "cas/"+x.String()+"/", func(k string, _ blob.Info) error {
			keys = append(keys, k)
			return nil
		}); err != nil {
			return n, err
		}
		for _, k := range keys {
			if err := g.store.Delete(ctx, k); err != nil {
				return n, err
			}
			n++
		}
		// The marker goes last: a sweep cut short finds the generation again.
		if err := g.store.Delete(ctx, "casgen/"+x.String()); err != nil {
			return n, err
		}
	}
	return n, nil
}
