package catalog_test

import (
	"os"
	"strings"
	"testing"

	"github.com/keel-cloud/keel/domain/catalog"
)

// Every registered event type is in the event catalogue users read.
func TestEveryEventTypeIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range catalog.EventTypes() {
		if !strings.Contains(string(doc), "`"+typ+"`") {
			t.Errorf("docs/events.md does not describe %s", typ)
		}
	}
}
