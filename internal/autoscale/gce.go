package autoscale

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"
	"time"

	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/dist-test/dist_test/internal/backoff"
)

// GCEConfig names a zonal managed instance group.
type GCEConfig struct {
	Project, Zone, Group string
	// Endpoint, when set, is the Compute API's base URL (a proxy, or a
	// fake in tests); Google's otherwise.
	Endpoint string
	// Tries bounds the calls of one operation that fail for a reason that
	// may pass (HTTP 429 and 5xx, a broken connection): 4 when 0.
	Tries int
	// Retry is the first wait between tries, doubled each time: 1 s when 0.
	Retry time.Duration
}

// GCE is a provider of a managed instance group: it grows the group with
// resize and removes exactly the named VMs with deleteInstances (the
// group's size goes down by as many), so that no other VM, and no running
// task, goes with them. Credentials come from the application-default
// chain (GOOGLE_APPLICATION_CREDENTIALS, gcloud's, or the VM's service
// account); the account needs roles/compute.instanceAdmin.v1 on the
// project, or a role with compute.instanceGroupManagers.get and .update
// and compute.instances.list and .delete.
type GCE struct {
	cfg GCEConfig
	igm *compute.InstanceGroupManagersService
}

// ErrQuota is wrapped by the errors of a GCE refusal for quota: retrying
// at once does not help; the next round tries again.
var ErrQuota = errors.New("GCE quota exceeded")

// NewGCE returns the provider of a group; opts go to the Compute client
// after the endpoint.
func NewGCE(ctx context.Context, cfg GCEConfig, opts ...option.ClientOption) (*GCE, error) {
	if cfg.Project == "" || cfg.Zone == "" || cfg.Group == "" {
		return nil, errors.New("the gce provider needs gce_project, gce_zone and gce_group")
	}
	if cfg.Tries <= 0 {
		cfg.Tries = 4
	}
	if cfg.Retry <= 0 {
		cfg.Retry = time.Second
	}
	if cfg.Endpoint != "" {
		opts = append([]option.ClientOption{option.WithEndpoint(cfg.Endpoint)}, opts...)
	}
	svc, err := compute.NewService(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("compute API client: %w", err)
	}
	return &GCE{cfg: cfg, igm: compute.NewInstanceGroupManagersService(svc)}, nil
}

// Instances implements Provider: the group's VMs, but those it is deleting
// or abandoning. A VM's name is its hostname.
func (g *GCE) Instances(ctx context.Context) ([]string, error) {
	var hosts []string
	err := g.try(ctx, "list the group's instances", func() error {
		hosts = hosts[:0]
		return g.igm.ListManagedInstances(g.cfg.Project, g.cfg.Zone, g.cfg.Group).Context(ctx).
			Pages(ctx, func(r *compute.InstanceGroupManagersListManagedInstancesResponse) error {
				for _, mi := range r.ManagedInstances {
					if mi.CurrentAction == "DELETING" || mi.CurrentAction == "ABANDONING" {
						continue
					}
					hosts = append(hosts, path.Base(mi.Instance))
				}
				return nil
			})
	})
	return hosts, err
}

// Grow implements Provider: the group's target size, plus n.
func (g *GCE) Grow(ctx context.Context, n int) error {
	if n < 1 {
		return nil
	}
	var m *compute.InstanceGroupManager
	err := g.try(ctx, "read the group", func() (err error) {
		m, err = g.igm.Get(g.cfg.Project, g.cfg.Zone, g.cfg.Group).Context(ctx).Do()
		return err
	})
	if err != nil {
		return err
	}
	size := m.TargetSize + int64(n)
	return g.try(ctx, fmt.Sprintf("resize the group to %d", size), func() error {
		op, err := g.igm.Resize(g.cfg.Project, g.cfg.Zone, g.cfg.Group, size).Context(ctx).Do()
		return opError(op, err)
	})
}

// Remove implements Provider: deleteInstances of exactly these VMs.
func (g *GCE) Remove(ctx context.Context, hosts []string) error {
	if len(hosts) == 0 {
		return nil
	}
	req := &compute.InstanceGroupManagersDeleteInstancesRequest{}
	for _, h := range hosts {
		if !ValidHostname(h) {
			return fmt.Errorf("refusing to delete %q: not an instance name", h)
		}
		req.Instances = append(req.Instances, "zones/"+g.cfg.Zone+"/instances/"+h)
	}
	return g.try(ctx, "delete instances "+strings.Join(hosts, ", "), func() error {
		op, err := g.igm.DeleteInstances(g.cfg.Project, g.cfg.Zone, g.cfg.Group, req).Context(ctx).Do()
		return opError(op, err)
	})
}

// opError is the error of a call that returned an operation: its own, or
// the errors the operation carries already.
func opError(op *compute.Operation, err error) error {
	if err != nil || op == nil || op.Error == nil || len(op.Error.Errors) == 0 {
		return err
	}
	var msgs []string
	quota := false
	for _, e := range op.Error.Errors {
		msgs = append(msgs, e.Code+": "+e.Message)
		quota = quota || strings.Contains(strings.ToUpper(e.Code), "QUOTA")
	}
	err = fmt.Errorf("operation %s: %s", op.Name, strings.Join(msgs, "; "))
	if quota {
		err = fmt.Errorf("%w: %w", ErrQuota, err)
	}
	return &permanent{err}
}

// permanent marks an error that a retry would meet again.
type permanent struct{ error }

func (p *permanent) Unwrap() error { return p.error }

// try runs call up to cfg.Tries times while it fails for a reason that may
// pass. A quota refusal, or any other 4xx, is final.
func (g *GCE) try(ctx context.Context, what string, call func() error) error {
	wait := g.cfg.Retry
	var err error
	for i := range g.cfg.Tries {
		if err = call(); err == nil {
			return nil
		}
		if !transient(err) {
			break
		}
		if i+1 < g.cfg.Tries && !backoff.Sleep(ctx, wait) {
			break
		}
		wait *= 2
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) && quotaError(ge) {
		err = fmt.Errorf("%w: %w", ErrQuota, err)
	}
	return fmt.Errorf("gce: %s: %w", what, err)
}

func transient(err error) bool {
	var p *permanent
	if errors.As(err, &p) {
		return false
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		return !quotaError(ge) && (ge.Code == http.StatusTooManyRequests || ge.Code >= 500)
	}
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// quotaError: GCE refused for a resource quota.
func quotaError(e *googleapi.Error) bool {
	for _, it := range e.Errors {
		if strings.EqualFold(it.Reason, "quotaExceeded") {
			return true
		}
	}
	return strings.Contains(e.Message, "QUOTA_EXCEEDED")
}
