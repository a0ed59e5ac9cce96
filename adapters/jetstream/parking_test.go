package jetstream_test

import (
	"testing"

	"github.com/keel-cloud/keel/eventlog"
	"github.com/keel-cloud/keel/eventlog/eventlogtest"
)

// The KEEL_PARKED bucket passes the parking lot contract.
func TestParkingLotContract(t *testing.T) {
	eventlogtest.RunParkingLot(t, func(t *testing.T) eventlog.ParkingLot {
		_, s := openStore(t, 0)
		lot, err := s.ParkingLot(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		return lot
	})
}
