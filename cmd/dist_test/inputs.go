package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/dist-test/dist_test/internal/config"
	"github.com/dist-test/dist_test/internal/httpclient"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/isolate/cache"
	"github.com/dist-test/dist_test/isolate/cas"
	"github.com/dist-test/dist_test/isolate/fetch"
	"github.com/dist-test/dist_test/slave"
)

// slaveInputs fetches tasks' inputs from the isolate server through the
// host's input cache.
type slaveInputs struct {
	cas   *cas.Client
	cache *cache.Cache
}

// openInputs opens the input cache ([isolate] cache_dir, else
// <scratch>/cache) for inputs served at casURL.
func openInputs(cfg *config.Config, casURL, scratch string, cred httpclient.Credentials) (*slaveInputs, error) {
	hc, err := casHTTPClient(casURL, cfg, cred)
	if err != nil {
		return nil, err
	}
	dir := cfg.Isolate.CacheDir
	if dir == "" {
		dir = filepath.Join(scratch, "cache")
	}
	c, err := cache.Open(dir, cache.Limits{MaxBytes: cfg.Isolate.CacheMaxBytes, MaxItems: cfg.Isolate.CacheMaxItems})
	if err != nil {
		return nil, fmt.Errorf("[isolate] cache_dir: %w", err)
	}
	return &slaveInputs{cas: cas.NewClient(casURL, hc), cache: c}, nil
}

// Fetch implements slave.Inputs.
func (s *slaveInputs) Fetch(ctx context.Context, digest, dir string, p slave.Placement) (slave.Tree, error) {
	o := fetch.Options{Copy: p.Copy}
	if p.Owner != nil {
		o.Owner = &cache.Owner{UID: int(p.Owner.UID), GID: int(p.Owner.GID)}
	}
	t, st, err := fetch.FetchWith(ctx, s.cas, s.cache, digest, dir, o)
	if errors.Is(err, fetch.ErrInvalidTree) {
		err = slave.InvalidInputs(err)
	}
	return slave.Tree{Command: t.Command, RelativeCwd: t.RelativeCwd, Inputs: model.Inputs{
		HotItems: int64(st.HotItems), ColdItems: int64(st.ColdItems), HotBytes: st.HotBytes,
		ColdBytes: st.ColdBytes, FetchTime: st.Duration,
	}, Release: t.Release}, err
}

// cacheSize is what the input cache holds now (slave.Config.CacheSize).
func (s *slaveInputs) cacheSize() (items, bytes int64) {
	st := s.cache.Stats()
	return int64(st.Items), st.Bytes
}

// Close writes the cache's index back.
func (s *slaveInputs) Close() error { return s.cache.Close() }
