// Package stores opens the tracking store a configuration names.
package stores

import (
	"context"
	"fmt"

	"github.com/mailgate/mailgate/tracking"
	"github.com/mailgate/mailgate/tracking/pgstore"
	"github.com/mailgate/mailgate/tracking/sqlitestore"
)

// Open opens the store a configuration names: driver "sqlite" (dsn: the
// database file) or "postgres" (dsn: a connection string or URL).
func Open(ctx context.Context, driver, dsn string) (tracking.Store, error) {
	switch driver {
	case "sqlite", "":
		return sqlitestore.Open(ctx, dsn)
	case "postgres":
		return pgstore.Open(ctx, dsn)
	}
	return nil, fmt.Errorf("tracking: unknown driver %q (sqlite or postgres)", driver)
}
