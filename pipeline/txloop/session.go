package txloop

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/kafka"
)

// NewSession makes the transact session of processor name ("jobs") in
// consumer group: it reads from the start of its inputs where the group
// has no offsets, only offsets no transaction holds, and keys its output
// as Kafka's default partitioner does, except records to its state topic,
// which go to the partition they name. extra adds the inputs and the
// processor's own options (with Partitions.Options).
func NewSession(kc *kafka.Config, name, group, state string, extra ...kgo.Opt) (*kgo.GroupTransactSession, error) {
	txnID := "tms-" + name + "-" + newID()
	if kc.InstanceID != "" {
		// A stable id: a restarted instance aborts the transaction its
		// crashed predecessor left open at once, instead of consumers
		// waiting for it to time out.
		txnID = "tms-" + name + "-" + kc.InstanceID
	}
	opts := append(kc.Options(name), kc.GroupOptions(group)...)
	opts = append(opts,
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RequireStableFetchOffsets(),
		kgo.TransactionalID(kc.Namespace+txnID),
		kgo.TransactionTimeout(30*time.Second),
		kgo.RecordPartitioner(statePartitioner{state: state}),
	)
	sess, err := kgo.NewGroupTransactSession(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return sess, nil
}

// statePartitioner sends state records to the partition they name (the
// input partition they belong to) and keys every other record as Kafka's
// default partitioner does.
type statePartitioner struct{ state string }

func (s statePartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if topic == s.state {
		return kgo.ManualPartitioner().ForTopic(topic)
	}
	return kgo.StickyKeyPartitioner(nil).ForTopic(topic)
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
