package rebuild

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tmsfleet/tms/adapters/postgres"
)

// errNotNow is a switch put off: a lock not had within
// SwitchLockTimeout, or the rebuild not at the live projectors within
// SwitchWait. The rebuild goes on and tries again.
var errNotNow = errors.New("not now")

// trySwitch puts the shadow tables in the place of the live ones, in one
// transaction:
//
//  1. It takes the live projectors' offset locks of every partition, the
//     locks each of their transactions takes first: the live projectors
//     finish the transaction they are in and then wait. Their offsets
//     are now fixed.
//  2. It waits, the rebuild's projectors still running, until the
//     rebuild has reached those offsets in every partition.
//  3. It takes the rebuild's own offset locks, and stops its projectors:
//     the shadow tables and their offsets are now fixed too, at or past
//     the live ones.
//  4. It drops the live tables, moves the shadow tables (every partition
//     of a partitioned one) into the live schema with the live tables'
//     grants, makes the rebuild's offsets the live projectors' offsets,
//     and drops the shadow schema.
//
// When it commits, the live projectors go on: their waiting transactions
// read the moved offsets, skip the records below them (the rebuild applied
// those), and write the new tables, which now have the live names. A query
// of the API sees the old tables or the new ones, never neither nor a mix:
// DDL is transactional, and queries that arrived meanwhile waited for the
// locks and then find the names bound to the new tables.
func (r *rebuilder) trySwitch(ctx context.Context, c *crew) (bool, error) {
	r.setState(ctx, StateSwitching, "")
	tx, err := r.cfg.Pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("rebuild: switch: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL lock_timeout = %d", r.cfg.SwitchLockTimeout.Milliseconds())); err != nil {
		return false, fmt.Errorf("rebuild: switch: %w", err)
	}

	// 1. Pause the live projectors.
	live := map[*model]offsets{}
	for _, m := range r.models {
		o, err := lockOffsets(ctx, tx, postgres.Offsets{Projector: m.reg.Name}, m)
		if err != nil {
			return false, notNow(fmt.Errorf("pause the live projector of %s: %w", m.name, err))
		}
		live[m] = o
	}
	// 2. Let the rebuild reach them.
	deadline := time.Now().Add(r.cfg.SwitchWait)
	for {
		behind := ""
		for _, m := range r.models {
			built, err := readOffsets(ctx, tx, r.shadow, m.group, m.topics)
			if err != nil {
				return false, err
			}
			if b := behindOf(m, built, live[m]); b != "" {
				behind = m.name + ": " + b
				break
			}
		}
		if behind == "" {
			break
		}
		if time.Now().After(deadline) {
			return false, notNow(fmt.Errorf("the rebuild did not reach the live projectors within %s (%s)", r.cfg.SwitchWait, behind))
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	// 3. Stop the rebuild.
	built := map[*model]offsets{}
	for _, m := range r.models {
		o, err := lockOffsets(ctx, tx, postgres.Offsets{Projector: m.group, Schema: r.shadow}, m)
		if err != nil {
			return false, notNow(fmt.Errorf("stop the rebuild of %s: %w", m.name, err))
		}
		built[m] = o
	}
	c.halt()
	for _, m := range r.models {
		if b := behindOf(m, built[m], live[m]); b != "" {
			return false, fmt.Errorf("rebuild: switch: %s went back behind the live projector (%s)", m.name, b)
		}
	}
	// 4. Swap.
	if err := r.swap(ctx, tx); err != nil {
		return false, err
	}
	// The rebuilt tables hold what the rebuild projected up to the
	// switch; from there on they are the live projector's.
	zero := time.Duration(0)
	for _, m := range r.models {
		var done int64
		for _, topic := range m.topics {
			for _, p := range m.parts[topic] {
				start := m.starts.at(topic, p, 0)
				done += max(built[m].at(topic, p, start), start) - start
			}
		}
		m.state = ModelSwitched
		m.latest.State, m.latest.Done, m.latest.Total, m.latest.ETA = ModelSwitched, done, done, &zero
	}
	if err := r.storeIn(ctx, tx, StateDone); err != nil {
		return false, err
	}
	if _, err := tx.Exec(ctx, `UPDATE tms_rebuild.rebuilds SET switched_at = now(), finished_at = now() WHERE id = $1`, r.id); err != nil {
		return false, fmt.Errorf("rebuild: switch: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, notNow(fmt.Errorf("commit: %w", err))
	}
	return true, nil
}

// notNow marks err as a reason to try again later when it is a lock not
// had in time; other errors stand.
func notNow(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "55P03" || pgErr.Code == "40P01") { // lock_not_available, deadlock_detected
		return fmt.Errorf("%w: %w", errNotNow, err)
	}
	if !errors.As(err, &pgErr) && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w: %w", errNotNow, err)
	}
	return fmt.Errorf("rebuild: switch: %w", err)
}

// lockOffsets takes o's locks of every partition of m's topics and
// returns o's offsets.
func lockOffsets(ctx context.Context, tx pgx.Tx, o postgres.Offsets, m *model) (offsets, error) {
	out := offsets{}
	for _, topic := range m.topics {
		next, err := o.Lock(ctx, tx, topic, m.parts[topic])
		if err != nil {
			return nil, err
		}
		out[topic] = map[int32]int64{}
		for p, off := range next {
			if off >= 0 {
				out[topic][p] = off
			}
		}
	}
	return out, nil
}

// behindOf names a partition where built is behind live, or "".
func behindOf(m *model, built, live offsets) string {
	for _, topic := range m.topics {
		for _, p := range m.parts[topic] {
			start := m.starts.at(topic, p, 0)
			if b, l := max(built.at(topic, p, start), start), live.at(topic, p, 0); b < l {
				return fmt.Sprintf("%s[%d] at %d, the live projector at %d", topic, p, b, l)
			}
		}
	}
	return ""
}

// swap does step 4 of trySwitch within tx.
func (r *rebuilder) swap(ctx context.Context, tx pgx.Tx) error {
	liveSchema, shadow := pgx.Identifier{r.live}.Sanitize(), pgx.Identifier{r.shadow}.Sanitize()
	var tables, liveTables []string
	for _, m := range r.models {
		for _, t := range m.reg.Tables {
			tables = append(tables, t)
			liveTables = append(liveTables, pgx.Identifier{r.live, t}.Sanitize())
		}
	}
	grants, err := r.grants(ctx, tx, tables)
	if err != nil {
		return err
	}
	// Without CASCADE: an object of someone else's that depends on a live
	// table (a view) stops the switch, rather than going with the table.
	if _, err := tx.Exec(ctx, `DROP TABLE IF EXISTS `+strings.Join(liveTables, ", ")); err != nil {
		return fmt.Errorf("rebuild: switch: drop the live tables: %w", err)
	}
	var moved []uint32
	for _, t := range tables {
		// A partitioned table moves without its partitions: move each.
		// (pg_partition_tree lists a plain table's nothing.)
		rows, err := tx.Query(ctx, `
			SELECT oid, relname FROM pg_class WHERE oid = to_regclass($1)
			UNION
			SELECT c.oid, c.relname FROM pg_partition_tree(to_regclass($1)) t JOIN pg_class c ON c.oid = t.relid
			WHERE c.relkind IN ('r', 'p')`, pgx.Identifier{r.shadow, t}.Sanitize())
		if err != nil {
			return fmt.Errorf("rebuild: switch: partitions of %s.%s: %w", r.shadow, t, err)
		}
		var rels []string
		var oid uint32
		var name string
		if _, err := pgx.ForEachRow(rows, []any{&oid, &name}, func() error {
			moved, rels = append(moved, oid), append(rels, name)
			return nil
		}); err != nil {
			return fmt.Errorf("rebuild: switch: partitions of %s.%s: %w", r.shadow, t, err)
		}
		if len(rels) == 0 {
			return fmt.Errorf("rebuild: switch: %s.%s is missing: the migrations did not make it", r.shadow, t)
		}
		for _, rel := range rels {
			if _, err := tx.Exec(ctx, `ALTER TABLE `+shadow+`.`+pgx.Identifier{rel}.Sanitize()+` SET SCHEMA `+liveSchema); err != nil {
				return fmt.Errorf("rebuild: switch: move %s.%s: %w", r.shadow, rel, err)
			}
		}
	}
	for _, g := range grants {
		if _, err := tx.Exec(ctx, g); err != nil {
			return fmt.Errorf("rebuild: switch: %s: %w", g, err)
		}
	}
	for _, m := range r.models {
		if _, err := tx.Exec(ctx, `DELETE FROM `+liveSchema+`.projector_offsets WHERE projector = $1`, m.reg.Name); err != nil {
			return fmt.Errorf("rebuild: switch: offsets of %s: %w", m.reg.Name, err)
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO `+liveSchema+`.projector_offsets (projector, topic, partition, next_offset)
			SELECT $1, topic, partition, next_offset FROM `+shadow+`.projector_offsets WHERE projector = $2`,
			m.reg.Name, m.group); err != nil {
			return fmt.Errorf("rebuild: switch: offsets of %s: %w", m.reg.Name, err)
		}
	}
	// The shadow schema goes, with the copies of the tables not rebuilt
	// and its bookkeeping; nothing moved may depend on what is in it.
	var deps []string
	rows, err := tx.Query(ctx, dependsOnShadow, moved, r.shadow)
	if err != nil {
		return fmt.Errorf("rebuild: switch: dependencies: %w", err)
	}
	if deps, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return fmt.Errorf("rebuild: switch: dependencies: %w", err)
	}
	if len(deps) > 0 {
		return fmt.Errorf("rebuild: switch: the rebuilt tables depend on %s in %s, which goes with it; "+
			"migrations must make only tables, indexes and constraints of the read models", strings.Join(deps, ", "), r.shadow)
	}
	if _, err := tx.Exec(ctx, `DROP SCHEMA `+shadow+` CASCADE`); err != nil {
		return fmt.Errorf("rebuild: switch: drop %s: %w", r.shadow, err)
	}
	return nil
}

// dependsOnShadow lists what the moved relations ($1: their oids), their
// indexes, column defaults, constraints and triggers depend on in schema
// $2: types, functions, relations.
const dependsOnShadow = `
WITH moved AS (
    SELECT unnest($1::oid[]) AS oid
    UNION SELECT indexrelid FROM pg_index WHERE indrelid = ANY($1::oid[])
), owned AS (
    SELECT 'pg_class'::regclass AS classid, oid AS objid FROM moved
    UNION ALL SELECT 'pg_attrdef'::regclass, oid FROM pg_attrdef WHERE adrelid IN (SELECT oid FROM moved)
    UNION ALL SELECT 'pg_constraint'::regclass, oid FROM pg_constraint WHERE conrelid IN (SELECT oid FROM moved)
    UNION ALL SELECT 'pg_trigger'::regclass, oid FROM pg_trigger WHERE tgrelid IN (SELECT oid FROM moved)
), ns AS (SELECT oid FROM pg_namespace WHERE nspname = $2)
SELECT DISTINCT pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid)
FROM pg_depend d JOIN owned o ON o.classid = d.classid AND o.objid = d.objid
WHERE d.deptype = 'n' AND (
       (d.refclassid = 'pg_type'::regclass AND d.refobjid IN (SELECT oid FROM pg_type WHERE typnamespace IN (SELECT oid FROM ns)))
    OR (d.refclassid = 'pg_proc'::regclass AND d.refobjid IN (SELECT oid FROM pg_proc WHERE pronamespace IN (SELECT oid FROM ns)))
    OR (d.refclassid = 'pg_class'::regclass AND d.refobjid IN (SELECT oid FROM pg_class WHERE relnamespace IN (SELECT oid FROM ns))))
ORDER BY 1`

// grants returns the GRANT statements that give the moved tables the
// privileges the live ones had (to others than their owner): a migration
// made both alike, but an operator may have granted more since.
func (r *rebuilder) grants(ctx context.Context, tx pgx.Tx, tables []string) ([]string, error) {
	var out []string
	for _, t := range tables {
		rows, err := tx.Query(ctx, `
			SELECT a.privilege_type, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(g.rolname) END, a.is_grantable
			FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a LEFT JOIN pg_roles g ON g.oid = a.grantee
			WHERE c.oid = to_regclass($1) AND a.grantee <> c.relowner ORDER BY 2, 1`, pgx.Identifier{r.live, t}.Sanitize())
		if err != nil {
			return nil, fmt.Errorf("rebuild: switch: grants of %s: %w", t, err)
		}
		var privilege, grantee string
		var grantable bool
		if _, err := pgx.ForEachRow(rows, []any{&privilege, &grantee, &grantable}, func() error {
			g := "GRANT " + privilege + " ON TABLE " + pgx.Identifier{r.live, t}.Sanitize() + " TO " + grantee
			if grantable {
				g += " WITH GRANT OPTION"
			}
			out = append(out, g)
			return nil
		}); err != nil {
			return nil, fmt.Errorf("rebuild: switch: grants of %s: %w", t, err)
		}
	}
	return out, nil
}
