package httpapi

import (
	"encoding/json"
	"testing"
)

type nested struct {
	Tags []string          `json:"tags"`
	Meta map[string]string `json:"meta"`
	Raw  json.RawMessage   `json:"raw,omitempty"`
}

type page struct {
	Items []nested `json:"items"`
	One   *nested  `json:"one"`
	None  []int    `json:"none"`
	Name  string   `json:"name"`
}

func TestNoNullArraysSendsEmptyListsAndObjects(t *testing.T) {
	in := page{Items: []nested{{}}, One: &nested{}, Name: "x"}
	out, err := noNullArrays(nil, "200", in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"items":[{"tags":[],"meta":{}}],"one":{"tags":[],"meta":{}},"none":[],"name":"x"}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	if in.Items[0].Tags != nil || in.One.Tags != nil {
		t.Error("the handler's value was changed in place")
	}
}
