package kafka

import "github.com/samsa-io/samsa/agent/commitlog"

// remoteStart is the first offset of l that object storage may serve, or -1 when it holds
// none: the store's start, raised to the offset DeleteRecords moved the log start to (which
// may lie inside object storage, below the local start). Records below it are never served,
// even while the remote segments that hold them wait for the next remote retention pass.
func remoteStart(remote RemoteLog, l *commitlog.Log) (int64, error) {
	rs, err := remote.RemoteStart(l.Topic(), l.Partition())
	if err != nil || rs < 0 {
		return rs, err
	}
	return max(rs, l.RecordsDeletedBelow()), nil
}
