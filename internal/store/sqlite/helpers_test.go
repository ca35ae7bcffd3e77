package sqlite_test

import (
	"time"

	"github.com/dist-test/dist_test/internal/model"
)

func testSlave() model.Slave {
	return model.Slave{ID: "s1", Hostname: "h", Slots: 1, RegisteredAt: time.UnixMilli(1)}
}
