package httpapi

import (
	"io"
	"net/http"
	"sync"
	"time"
)

// bodyDeadline lifts the read deadline huma puts on the connection while
// it reads a request body (5 s by default) as soon as the body is read. Left
// in place, that deadline outlives the read: a handler that takes longer
// (waiting for the read model, say) finds its request cancelled when the
// server's background read of the idle connection hits it.
func bodyDeadline(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = &deadlineBody{ReadCloser: r.Body, rc: http.NewResponseController(w)}
		}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody clears the connection's read deadline once its body ends.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	once sync.Once
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.clear()
	}
	return n, err
}

func (b *deadlineBody) Close() error {
	b.clear()
	return b.ReadCloser.Close()
}

func (b *deadlineBody) clear() {
	b.once.Do(func() { _ = b.rc.SetReadDeadline(time.Time{}) })
}
