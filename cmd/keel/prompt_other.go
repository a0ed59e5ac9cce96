//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package main

import (
	"errors"
	"io"
)

// Here there is no no-echo prompt: passwords come from the environment or
// --password-stdin.

func isTerminal(int) bool { return false }

func readNoEcho(int, io.Writer) ([]byte, error) {
	return nil, errors.New("no password prompt on this system")
}
