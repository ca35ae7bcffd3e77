package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/dist-test/dist_test/internal/model"
)

// Secret implements store.Store.
func (s *Store) Secret(ctx context.Context, name string, fresh []byte) ([]byte, error) {
	if name == "" || len(name) > 64 || len(fresh) == 0 || len(fresh) > 1024 {
		return nil, fmt.Errorf("%w: secret %q of %d bytes: want a name of 1 to 64 bytes and 1 to 1024 bytes", model.ErrInvalid, name, len(fresh))
	}
	var out []byte
	err := s.tx(ctx, func(tx *sql.Tx) error {
		// Masters starting at once all insert; the first wins and every
		// one of them reads its value.
		_, err := s.exec(ctx, tx, `INSERT INTO secrets (name, value, created_at) VALUES (?, ?, ?)`,
			name, fresh, time.Now().UnixMilli())
		if err != nil && !s.d.Duplicate(err) {
			return err
		}
		return s.queryRow(ctx, tx, `SELECT value FROM secrets WHERE name = ?`, name).Scan(&out)
	})
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", name, err)
	}
	return out, nil
}
