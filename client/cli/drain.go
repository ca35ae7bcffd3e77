package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
)

func drainCmd(env *Env) *cobra.Command {
	var c conn
	cmd := &cobra.Command{
		Use:   "drain HOST|SLAVE_ID",
		Short: "Have slaves finish what they run and leave",
		Long: `Drain the live slaves of a host (every slave process on it), or one slave by
its id: each takes no new task, finishes and reports the ones it runs,
deregisters and exits 0. A machine may be stopped once its slaves have left
(dist_test's slaves list shows them draining until then).`,
		Args: cobra.ExactArgs(1),
		RunE: quiet(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			s, err := env.open(c, false)
			if err != nil {
				return err
			}
			slaves, err := s.api.Slaves(ctx)
			if err != nil {
				return err
			}
			targets := DrainTargets(slaves, args[0])
			if len(targets) == 0 {
				return fmt.Errorf("%w: no live slave has the id or hostname %q", model.ErrNotFound, args[0])
			}
			for _, id := range targets {
				sl, err := s.api.Drain(ctx, id)
				if err != nil {
					return err
				}
				fmt.Fprintf(env.Stdout, "%s\t%s\t%s\t%d running\n", sl.ID, sl.Hostname, sl.State, sl.Running)
			}
			return nil
		}),
	}
	c.flags(cmd)
	return cmd
}

// DrainTargets are the ids of the live slaves that arg names: the slave of
// that id, else every live slave of that hostname.
func DrainTargets(slaves []protocol.Slave, arg string) []string {
	var ids []string
	for _, s := range slaves {
		live := model.SlaveState(s.State).Live()
		if s.ID == arg && live {
			return []string{s.ID}
		}
		if s.Hostname == arg && live {
			ids = append(ids, s.ID)
		}
	}
	return ids
}
