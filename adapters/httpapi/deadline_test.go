package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
)

// A handler that takes longer than huma's body read timeout keeps its
// request: the deadline set for reading the body ends with the body, with
// or without one.
func TestSlowHandlerOutlivesTheBodyReadTimeout(t *testing.T) {
	mux := http.NewServeMux()
	api := humago.New(mux, huma.DefaultConfig("t", "1"))
	huma.Register(api, huma.Operation{OperationID: "slow", Method: http.MethodPost, Path: "/slow", BodyReadTimeout: 100 * time.Millisecond},
		func(ctx context.Context, in *struct {
			Body *struct {
				X string `json:"x,omitempty"`
			} `required:"false"`
		}) (*struct{}, error) {
			select {
			case <-ctx.Done():
				return nil, huma.Error500InternalServerError("request cancelled while the handler worked")
			case <-time.After(400 * time.Millisecond):
				return nil, nil
			}
		})
	srv := httptest.NewServer(bodyDeadline(mux))
	defer srv.Close()
	for _, body := range []string{"", `{"x":"y"}`} {
		res, err := http.Post(srv.URL+"/slow", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNoContent {
			t.Fatalf("body %q: status %d, want 204", body, res.StatusCode)
		}
	}
}
