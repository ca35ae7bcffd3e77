// Package migrations embeds dist_test's database schema, one folder of
// goose SQL migrations per dialect.
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed sqlite/*.sql mysql/*.sql
var all embed.FS

// SQLite returns the migrations for SQLite.
func SQLite() fs.FS { return sub("sqlite") }

// MySQL returns the migrations for MySQL and MariaDB.
func MySQL() fs.FS { return sub("mysql") }

func sub(dir string) fs.FS {
	f, err := fs.Sub(all, dir)
	if err != nil {
		panic(err) // the folders are embedded at build time
	}
	return f
}
