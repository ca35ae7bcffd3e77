// Package mysql opens dist_test's production store on MySQL or MariaDB
// through github.com/go-sql-driver/mysql.
package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/pressly/goose/v3"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/store/sqlstore"
	"github.com/dist-test/dist_test/migrations"
)

// recentKeep is how many commas the runs kept for the p90 may have.
var recentKeep = strconv.Itoa(model.RecentRuns - 1)

// Dialect is MySQL's part of sqlstore.
var Dialect = sqlstore.Dialect{
	Name:      "mysql",
	ForUpdate: " FOR UPDATE",
	Explain:   "EXPLAIN",
	UpsertDuration: `INSERT INTO durations (desc_hash, description, avg_ms, samples, updated_at, recent)
		VALUES (?, ?, ?, ?, ?, CAST(? AS CHAR))
		ON DUPLICATE KEY UPDATE
			recent = CASE
				WHEN recent = '' THEN VALUES(recent)
				WHEN LENGTH(recent) - LENGTH(REPLACE(recent, ',', '')) >= ` + recentKeep + `
				THEN CONCAT(SUBSTRING(recent, LOCATE(',', recent) + 1), ',', VALUES(recent))
				ELSE CONCAT(recent, ',', VALUES(recent)) END,
			avg_ms = CAST(avg_ms * 0.7 + VALUES(avg_ms) * 0.3 AS SIGNED),
			samples = samples + 1, updated_at = VALUES(updated_at)`,
	// Only errors after which nothing was committed: a transaction cut off
	// by a lost connection may have committed, and is not run again.
	Retryable:   func(err error) bool { n := number(err); return n == 1213 || n == 1205 },
	Unavailable: unavailable,
	Duplicate:   func(err error) bool { return number(err) == 1062 },
	Invalid: func(err error) bool {
		switch number(err) {
		case 1406, 1366, 1267, 1270, 1271: // data too long, incorrect string value, illegal mix of collations
			return true
		}
		return false
	},
}

func number(err error) uint16 {
	var e *mysql.MySQLError
	if errors.As(err, &e) {
		return e.Number
	}
	return 0
}

// unavailable: the server cannot be reached, went away, or is shutting down.
func unavailable(err error) bool {
	var ne net.Error
	switch {
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, mysql.ErrInvalidConn),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.As(err, &ne):
		return true
	}
	switch number(err) {
	case 1040, 1053, 1927, 2002, 2003, 2006, 2013: // too many connections, shutdown, killed, gone
		return true
	}
	return false
}

// Config says where the database is.
type Config struct {
	Host     string
	Port     int // 3306 when 0
	User     string
	Password string
	Database string
}

// Addr is host:port.
func (c Config) Addr() string {
	port := c.Port
	if port == 0 {
		port = 3306
	}
	return net.JoinHostPort(c.Host, fmt.Sprint(port))
}

// DSN is the driver's connection string for c, with the settings dist_test
// relies on.
func (c Config) DSN() string {
	m := mysql.NewConfig()
	m.User, m.Passwd, m.Net, m.Addr, m.DBName = c.User, c.Password, "tcp", c.Addr(), c.Database
	tune(m)
	return m.FormatDSN()
}

// tune sets what the store relies on, whatever DSN it was given.
func tune(m *mysql.Config) {
	m.ParseTime = true
	m.Timeout = 5 * time.Second       // dial
	m.ReadTimeout = 30 * time.Second  // a query that hangs fails, rather than the master
	m.WriteTimeout = 30 * time.Second //
	// Client-side interpolation saves a round trip per statement; it is safe
	// with utf8mb4 and the driver's escaping.
	m.InterpolateParams = true
	// UPDATE reports the rows it matched, as SQLite does, not only those it
	// changed: the store tells "no such row" from "already so" by it.
	m.ClientFoundRows = true
	if m.Params == nil {
		m.Params = map[string]string{}
	}
	m.Params["charset"] = "utf8mb4"
}

// Open connects, creates the database if it does not exist and the user may,
// applies the migrations, and returns the store.
func Open(ctx context.Context, c Config) (*sqlstore.Store, error) {
	if c.Database == "" {
		return nil, fmt.Errorf("[mysql] database is not set")
	}
	where := fmt.Sprintf("mysql at %s (database %s)", c.Addr(), c.Database)
	if err := createDatabase(ctx, c); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return OpenDSN(ctx, c.DSN(), where)
}

// OpenDSN is Open for a ready driver DSN; where names the database in errors.
func OpenDSN(ctx context.Context, dsn, where string) (*sqlstore.Store, error) {
	m, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	tune(m)
	db, err := sql.Open("mysql", m.FormatDSN())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(16)
	db.SetConnMaxLifetime(5 * time.Minute)
	db.SetConnMaxIdleTime(time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: cannot connect: %w", where, err)
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	s, err := sqlstore.New(ctx, db, db, Dialect)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return s, nil
}

func createDatabase(ctx context.Context, c Config) error {
	admin := c
	admin.Database = ""
	db, err := sql.Open("mysql", admin.DSN())
	if err != nil {
		return err
	}
	defer db.Close()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		return fmt.Errorf("cannot connect: %w", err)
	}
	// Without the privilege this fails; the database may exist anyway, and
	// connecting to it says so.
	_, _ = db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS `"+c.Database+"` CHARACTER SET utf8mb4")
	return nil
}

// migrate applies the migrations under a named lock, so that masters
// starting together do not apply them twice.
func migrate(ctx context.Context, db *sql.DB) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK('dist_test_migrations', 60)").Scan(&got); err != nil {
		return fmt.Errorf("migrations lock: %w", err)
	}
	if !got.Valid || got.Int64 != 1 {
		return fmt.Errorf("migrations lock: another master held it for 60 s")
	}
	defer conn.ExecContext(context.Background(), "SELECT RELEASE_LOCK('dist_test_migrations')")
	p, err := goose.NewProvider(goose.DialectMySQL, db, migrations.MySQL())
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	return nil
}
