package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// LocalConfig describes a Postgres cluster run from the machine's
// PostgreSQL binaries, for `make run` when no DATABASE_URL is given.
type LocalConfig struct {
	// Dir holds the cluster (Dir/pgdata), its socket and its log.
	Dir string
	// Port it listens on, on 127.0.0.1 only. Default 5433, beside a
	// system cluster's 5432.
	Port int
	// BinDir holds initdb and pg_ctl. Default: pg_config --bindir, else
	// the newest /usr/lib/postgresql/*/bin.
	BinDir string
	// Logger; default slog's.
	Logger *slog.Logger
}

// Local is a running local cluster.
type Local struct {
	cfg  LocalConfig
	cred *syscall.Credential
	url  string
}

// localDatabase and localUser name what the local cluster serves.
const (
	localDatabase = "tms"
	localUser     = "tms"
)

// StartLocal initialises the cluster on first use and starts it (or finds
// it running). The cluster trusts local connections on 127.0.0.1 only: it
// is a developer's database, not a deployment. initdb refuses to run as
// root, so as root the cluster runs as the postgres user.
func StartLocal(ctx context.Context, cfg LocalConfig) (*Local, error) {
	if cfg.Port == 0 {
		cfg.Port = 5433
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.BinDir == "" {
		dir, err := findBinDir()
		if err != nil {
			return nil, err
		}
		cfg.BinDir = dir
	}
	abs, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("local postgres: %w", err)
	}
	cfg.Dir = abs
	l := &Local{cfg: cfg, url: fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", localUser, cfg.Port, localDatabase)}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("local postgres: %w", err)
	}
	if os.Geteuid() == 0 {
		if err := l.runAsPostgresUser(); err != nil {
			return nil, err
		}
	}
	pgdata := filepath.Join(cfg.Dir, "pgdata")
	if _, err := os.Stat(filepath.Join(pgdata, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		cfg.Logger.Info("initialising a local Postgres cluster", "dir", pgdata)
		if out, err := l.run(ctx, "initdb", "-D", pgdata, "-U", localUser, "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8"); err != nil {
			return nil, fmt.Errorf("local postgres: initdb: %w\n%s", err, out)
		}
	}
	if _, err := l.run(ctx, "pg_ctl", "-D", pgdata, "status"); err != nil {
		opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1", cfg.Port, cfg.Dir)
		if out, err := l.run(ctx, "pg_ctl", "-D", pgdata, "-l", filepath.Join(cfg.Dir, "postgres.log"), "-o", opts, "-w", "-t", "60", "start"); err != nil {
			return nil, fmt.Errorf("local postgres: start (see %s): %w\n%s", filepath.Join(cfg.Dir, "postgres.log"), err, out)
		}
	}
	if err := l.createDatabase(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

// URL is the connection string of the local database.
func (l *Local) URL() string { return l.url }

// Stop shuts the cluster down (fast mode: sessions are disconnected).
func (l *Local) Stop(ctx context.Context) error {
	out, err := l.run(ctx, "pg_ctl", "-D", filepath.Join(l.cfg.Dir, "pgdata"), "-m", "fast", "-w", "stop")
	if err != nil {
		return fmt.Errorf("local postgres: stop: %w\n%s", err, out)
	}
	return nil
}

func (l *Local) runAsPostgresUser() error {
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("local postgres: running as root needs the postgres user (initdb refuses root): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	l.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	if err := filepath.Walk(l.cfg.Dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	}); err != nil {
		return fmt.Errorf("local postgres: hand %s to the postgres user: %w", l.cfg.Dir, err)
	}
	// Every directory above Dir must let the postgres user through.
	for dir := filepath.Dir(l.cfg.Dir); ; dir = filepath.Dir(dir) {
		if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("local postgres: the postgres user cannot enter %s; set TMS_DATA_DIR to a directory it can reach, e.g. /var/tmp/tms", dir)
		}
		if dir == "/" {
			return nil
		}
	}
}

func (l *Local) run(ctx context.Context, tool string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(l.cfg.BinDir, tool), args...)
	cmd.Dir = l.cfg.Dir
	if l.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: l.cred}
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (l *Local) createDatabase(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://%s@127.0.0.1:%d/postgres?sslmode=disable", localUser, l.cfg.Port))
	if err != nil {
		return fmt.Errorf("local postgres: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", localDatabase).Scan(&exists); err != nil {
		return fmt.Errorf("local postgres: %w", err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{localDatabase}.Sanitize()); err != nil {
			return fmt.Errorf("local postgres: create database: %w", err)
		}
	}
	return nil
}

// findBinDir locates initdb and pg_ctl.
func findBinDir() (string, error) {
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dir := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("local postgres: no PostgreSQL binaries found (install postgresql, or set DATABASE_URL)")
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}
