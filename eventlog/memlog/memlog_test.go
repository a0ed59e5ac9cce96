package memlog_test

import (
	"testing"

	"github.com/keel-cloud/keel/eventlog"
	"github.com/keel-cloud/keel/eventlog/eventlogtest"
	"github.com/keel-cloud/keel/eventlog/memlog"
)

func TestContract(t *testing.T) {
	eventlogtest.Run(t, func(*testing.T) eventlog.Log { return memlog.New() })
}
