package hostlink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// imageChunk is how many bytes one image answer carries at most: as base64
// in JSON it stays under the 1 MB default payload of an external NATS.
const imageChunk = 512 << 10

// imageWait bounds how long one image request waits for its bytes to come
// out of the object store; the host asks again when none came.
const imageWait = 10 * time.Second

type imageRequest struct {
	Object string `json:"object"`
	Offset int64  `json:"offset"`
}

type imageReply struct {
	Data []byte `json:"data,omitempty"`
	EOF  bool   `json:"eof,omitempty"`
}

// spool is an image object copied out of the object store into a private
// temporary file, once for every host that reads it at the time: the
// object store's reader must be read without pause, a host reads a chunk
// per request, at its own pace and from any offset.
type spool struct {
	mu      sync.Mutex
	grew    chan struct{} // closed and replaced each time written grows or the copy ends
	f       *os.File
	written int64
	done    bool
	err     error
	used    time.Time
	readers map[string]bool // hosts found allowed to read it (under Service.spoolMu)
	cancel  func()          // stops the copy
}

// wait returns what the spool holds once it holds more than offset bytes,
// or the copy ended, or imageWait passed.
func (sp *spool) wait(ctx context.Context, offset int64) (written int64, done bool, err error) {
	timer := time.NewTimer(imageWait)
	defer timer.Stop()
	for {
		sp.mu.Lock()
		written, done, err, grew := sp.written, sp.done, sp.err, sp.grew
		sp.used = time.Now()
		sp.mu.Unlock()
		if written > offset || done {
			return written, done, err
		}
		select {
		case <-grew:
		case <-timer.C:
			return written, false, nil
		case <-ctx.Done():
			return written, false, ctx.Err()
		}
	}
}

func (sp *spool) fill(r io.ReadCloser) {
	defer r.Close()
	buf := make([]byte, 256<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := sp.f.Write(buf[:n]); werr != nil && err == nil {
				err = werr
			}
		}
		sp.mu.Lock()
		sp.written += int64(n)
		if err != nil {
			sp.done = true
			if !errors.Is(err, io.EOF) {
				sp.err = err
			}
		}
		close(sp.grew)
		sp.grew = make(chan struct{})
		sp.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// image answers one chunk of an image's bytes to a host that builds a
// server from that image, and to no other.
func (s *Service) image(ctx context.Context, hostID, name string, req imageRequest) (imageReply, error) {
	if s.Images == nil {
		return imageReply{}, refusef("keel serve has no image store")
	}
	if req.Offset < 0 || req.Object == "" {
		return imageReply{}, refusef("malformed image request")
	}
	sp, err := s.spoolOf(ctx, req.Object, func() error { return s.mayRead(ctx, hostID, name, req.Object) }, hostID)
	if err != nil {
		return imageReply{}, err
	}
	written, done, err := sp.wait(ctx, req.Offset)
	if err != nil {
		s.dropSpool(req.Object, sp)
		return imageReply{}, fmt.Errorf("read image %s: %w", req.Object, err)
	}
	n := min(written-req.Offset, imageChunk)
	if n <= 0 {
		return imageReply{EOF: done && req.Offset >= written}, nil // nothing yet: the host asks again
	}
	buf := make([]byte, n)
	if _, err := sp.f.ReadAt(buf, req.Offset); err != nil {
		return imageReply{}, fmt.Errorf("read image %s: %w", req.Object, err)
	}
	return imageReply{Data: buf, EOF: done && req.Offset+n >= written}, nil
}

// spoolOf returns the spool of object for host hostID, starting its copy
// when there is none. may says whether the host may read the object; it
// is asked once per host and spool, not for every chunk.
func (s *Service) spoolOf(ctx context.Context, object string, may func() error, hostID string) (*spool, error) {
	s.spoolMu.Lock()
	sp, ok := s.spools[object]
	allowed := ok && sp.readers[hostID]
	s.spoolMu.Unlock()
	if !allowed {
		if err := may(); err != nil {
			return nil, err
		}
	}
	s.spoolMu.Lock()
	defer s.spoolMu.Unlock()
	s.sweepLocked()
	if sp, ok := s.spools[object]; ok {
		sp.readers[hostID] = true
		return sp, nil
	}
	// The copy outlives the request that started it, not the spool: a
	// spool no host reads for a while is removed, and its copy stopped.
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r, err := s.Images.Get(cctx, object)
	if err != nil {
		cancel()
		return nil, err
	}
	if s.SpoolDir != "" {
		if err := os.MkdirAll(s.SpoolDir, 0o700); err != nil {
			cancel()
			r.Close()
			return nil, fmt.Errorf("spool image %s: %w", object, err)
		}
	}
	f, err := os.CreateTemp(s.SpoolDir, "keel-image-")
	if err != nil {
		cancel()
		r.Close()
		return nil, fmt.Errorf("spool image %s: %w", object, err)
	}
	sp = &spool{f: f, grew: make(chan struct{}), used: time.Now(), readers: map[string]bool{hostID: true}, cancel: cancel}
	if s.spools == nil {
		s.spools = map[string]*spool{}
	}
	s.spools[object] = sp
	go sp.fill(r)
	return sp, nil
}

func (s *Service) dropSpool(object string, sp *spool) {
	s.spoolMu.Lock()
	defer s.spoolMu.Unlock()
	if s.spools[object] == sp {
		delete(s.spools, object)
		sp.remove()
	}
}

// spoolIdle is how long a spool no host reads is kept.
const spoolIdle = 2 * time.Minute

// sweepLocked removes the spools no host read for spoolIdle, finished or
// not (a copy that stalls ends with its spool).
func (s *Service) sweepLocked() {
	for object, sp := range s.spools {
		sp.mu.Lock()
		idle := time.Since(sp.used) > spoolIdle
		sp.mu.Unlock()
		if idle {
			delete(s.spools, object)
			sp.remove()
		}
	}
}

// sweepSpools removes idle spools every half minute until ctx ends, then
// every spool.
func (s *Service) sweepSpools(ctx context.Context) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.closeSpools()
			return
		case <-t.C:
			s.spoolMu.Lock()
			s.sweepLocked()
			s.spoolMu.Unlock()
		}
	}
}

// closeSpools removes every spool (keel serve stops).
func (s *Service) closeSpools() {
	s.spoolMu.Lock()
	defer s.spoolMu.Unlock()
	for object, sp := range s.spools {
		delete(s.spools, object)
		sp.remove()
	}
}

func (sp *spool) remove() {
	sp.cancel()
	_ = sp.f.Close() // the copy, if still running, fails on its next write and ends
	_ = os.Remove(sp.f.Name())
}

// mayRead refuses an image to a host none of whose servers is built from it.
func (s *Service) mayRead(ctx context.Context, hostID, name, object string) error {
	hs, _, err := s.App.Hosts.LoadLatest(ctx, hostID)
	if err != nil {
		return err
	}
	for id := range hs.Claims {
		st, _, err := s.App.Servers.Load(ctx, id)
		if err != nil || st.Host != name {
			continue
		}
		im, _, err := s.App.Images.Load(ctx, st.ImageID)
		if err == nil && im.Object == object {
			return nil
		}
	}
	s.Log.Warn("refused: a host asked for an image none of its servers uses", "host", name, "object", object)
	return refusef("no server on host %s is built from image object %s", name, object)
}
