package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
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
	// started is set when StartLocal started the cluster, rather than
	// finding it running.
	started bool
}

// Started reports whether StartLocal started the cluster; false when it
// found it running (another process's, which Stop would stop under it).
func (l *Local) Started() bool { return l.started }

// localDatabase and localUser name what the local cluster serves.
const (
	localDatabase = "tms"
	localUser     = "tms"
)

// StartLocal initialises the cluster on first use and starts it (or finds
// it running). It is a developer's database, not a deployment, but it is
// still a database on a shared machine: it listens on 127.0.0.1 and its
// own socket only, every connection needs the password (SCRAM), which is
// made at initialisation and kept in Dir/password (mode 0600), and its
// directories are 0700. A cluster an older tms initialised to trust local
// connections is moved to passwords at its next start. initdb refuses to
// run as root, so as root the cluster runs as the postgres user.
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
	l := &Local{cfg: cfg}
	if err := privateDir(cfg.Dir); err != nil {
		return nil, fmt.Errorf("local postgres: %w", err)
	}
	password, fresh, err := l.password()
	if err != nil {
		return nil, err
	}
	l.url = l.urlFor(localDatabase, password)
	if os.Geteuid() == 0 {
		if err := l.runAsPostgresUser(); err != nil {
			return nil, err
		}
	}
	pgdata := filepath.Join(cfg.Dir, "pgdata")
	initialised := true
	if _, err := os.Stat(filepath.Join(pgdata, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		initialised = false
		cfg.Logger.Info("initialising a local Postgres cluster", "dir", pgdata)
		if out, err := l.run(ctx, "initdb", "-D", pgdata, "-U", localUser, "--pwfile", l.PasswordFile(),
			"--auth-local", "scram-sha-256", "--auth-host", "scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"); err != nil {
			return nil, fmt.Errorf("local postgres: initdb: %w\n%s", err, out)
		}
	}
	if _, err := l.run(ctx, "pg_ctl", "-D", pgdata, "status"); err != nil {
		l.started = true
		opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1", cfg.Port, cfg.Dir)
		if out, err := l.run(ctx, "pg_ctl", "-D", pgdata, "-l", filepath.Join(cfg.Dir, "postgres.log"), "-o", opts, "-w", "-t", "60", "start"); err != nil {
			return nil, fmt.Errorf("local postgres: start (see %s): %w\n%s", filepath.Join(cfg.Dir, "postgres.log"), err, out)
		}
	}
	if initialised && fresh {
		// Initialised by a tms that trusted every local user: it still
		// does, so the password can be set, and trust taken away.
		if err := l.requirePassword(ctx, password); err != nil {
			return nil, err
		}
	}
	if err := l.createDatabase(ctx, password); err != nil {
		return nil, err
	}
	return l, nil
}

// privateDir makes dir, or makes an existing one, readable by its owner
// only.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.Chmod(dir, 0o700)
}

// PasswordFile is where the cluster's password is kept (mode 0600).
func (l *Local) PasswordFile() string { return filepath.Join(l.cfg.Dir, "password") }

// password reads the cluster's password, or makes one; fresh says it was
// just made.
func (l *Local) password() (password string, fresh bool, err error) {
	raw, err := os.ReadFile(l.PasswordFile())
	if err == nil {
		return strings.TrimSpace(string(raw)), false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", false, fmt.Errorf("local postgres: %w", err)
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", false, err
	}
	password = hex.EncodeToString(b[:])
	if err := os.WriteFile(l.PasswordFile(), []byte(password+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("local postgres: %w", err)
	}
	return password, true, nil
}

func (l *Local) urlFor(database, password string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(localUser, password),
		Host: fmt.Sprintf("127.0.0.1:%d", l.cfg.Port), Path: "/" + database, RawQuery: "sslmode=disable"}
	return u.String()
}

// hbaPassword is the authentication of the local cluster: a password for
// everyone, on the socket and on loopback.
const hbaPassword = `# tms's local cluster: every connection needs the password (SCRAM).
local all all scram-sha-256
host  all all 127.0.0.1/32 scram-sha-256
host  all all ::1/128 scram-sha-256
`

// requirePassword gives the cluster's user the password and makes the
// cluster require it, for a cluster that trusted local connections.
func (l *Local) requirePassword(ctx context.Context, password string) error {
	l.cfg.Logger.Warn("the local Postgres cluster trusted every local user; it now requires a password",
		"password_file", l.PasswordFile())
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://%s@127.0.0.1:%d/postgres?sslmode=disable", localUser, l.cfg.Port))
	if err != nil {
		return fmt.Errorf("local postgres: %s is missing and the cluster does not trust local users (remove %s to start afresh): %w",
			l.PasswordFile(), l.cfg.Dir, err)
	}
	defer conn.Close(ctx)
	// ALTER ROLE takes no parameters; the password is hex digits.
	if _, err := conn.Exec(ctx, "SET password_encryption = 'scram-sha-256'"); err != nil {
		return fmt.Errorf("local postgres: %w", err)
	}
	if _, err := conn.Exec(ctx, "ALTER ROLE "+pgx.Identifier{localUser}.Sanitize()+" PASSWORD '"+password+"'"); err != nil {
		return fmt.Errorf("local postgres: set the password: %w", err)
	}
	hba := filepath.Join(l.cfg.Dir, "pgdata", "pg_hba.conf")
	if err := os.WriteFile(hba, []byte(hbaPassword), 0o600); err != nil {
		return fmt.Errorf("local postgres: %w", err)
	}
	if l.cred != nil {
		if err := os.Chown(hba, int(l.cred.Uid), int(l.cred.Gid)); err != nil {
			return fmt.Errorf("local postgres: %w", err)
		}
	}
	if out, err := l.run(ctx, "pg_ctl", "-D", filepath.Join(l.cfg.Dir, "pgdata"), "reload"); err != nil {
		return fmt.Errorf("local postgres: reload: %w\n%s", err, out)
	}
	return nil
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

func (l *Local) createDatabase(ctx context.Context, password string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, l.urlFor("postgres", password))
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
