package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// prompter asks the user for what the flags and environment did not say:
// on the terminal when stdin is one, and reads the single line of
// --password-stdin otherwise. One bufio.Reader serves every read of a
// command, so that a line read ahead is not lost between two questions.
type prompter struct {
	in  io.Reader
	br  *bufio.Reader
	out io.Writer // where the questions go (stderr)
}

func newPrompter(in io.Reader, out io.Writer) *prompter {
	return &prompter{in: in, br: bufio.NewReader(in), out: out}
}

// terminalFD is stdin's descriptor when stdin is a terminal.
func (p *prompter) terminalFD() (int, bool) {
	f, ok := p.in.(*os.File)
	if !ok || !isTerminal(int(f.Fd())) {
		return 0, false
	}
	return int(f.Fd()), true
}

// errNoTerminal says that a question could not be asked.
var errNoTerminal = errors.New("stdin is not a terminal")

// ask shows question and reads the answer, echoed, from the terminal.
func (p *prompter) ask(question string) (string, error) {
	if _, ok := p.terminalFD(); !ok {
		return "", errNoTerminal
	}
	fmt.Fprint(p.out, question)
	line, err := p.line()
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

// secret shows question and reads the answer from the terminal without
// echoing it.
func (p *prompter) secret(question string) (string, error) {
	fd, ok := p.terminalFD()
	if !ok {
		return "", errNoTerminal
	}
	fmt.Fprint(p.out, question)
	b, err := readNoEcho(fd, p.out)
	fmt.Fprintln(p.out) // the Enter the user typed was not echoed either
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// stdinLine reads the one line of --password-stdin: what is on it, as it
// is (spaces belong to a password), without the line ending.
func (p *prompter) stdinLine() (string, error) {
	line, err := p.line()
	if err != nil {
		return "", err
	}
	if line == "" {
		return "", errors.New("--password-stdin: stdin held no password (pipe it in, e.g. printf '%s\\n' \"$PW\" | keel ...)")
	}
	return line, nil
}

// line reads up to the end of a line (or of the input), without the line
// ending.
func (p *prompter) line() (string, error) {
	line, err := p.br.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read stdin: %w", err)
	}
	return strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"), nil
}

// passwordSource says where a command takes a password from, in this
// order: one line of stdin (--password-stdin), an environment variable,
// a no-echo prompt on the terminal.
type passwordSource struct {
	stdin    bool   // --password-stdin
	env      string // e.g. KEEL_PASSWORD ("": none)
	question string // e.g. "Password for alice: "
	confirm  bool   // a new password: asked twice on the terminal
}

func (p *prompter) password(s passwordSource) (string, error) {
	if s.stdin {
		return p.stdinLine()
	}
	if s.env != "" {
		if v := os.Getenv(s.env); v != "" {
			return v, nil
		}
	}
	pw, err := p.secret(s.question)
	if errors.Is(err, errNoTerminal) {
		return "", p.noTerminal(s)
	}
	if err != nil {
		return "", err
	}
	if pw == "" {
		return "", errors.New("no password given")
	}
	if s.confirm {
		again, err := p.secret("Again, to confirm: ")
		if err != nil {
			return "", err
		}
		if again != pw {
			return "", errors.New("the two passwords differ; nothing was changed")
		}
	}
	return pw, nil
}

func (p *prompter) noTerminal(s passwordSource) error {
	if s.env != "" {
		return fmt.Errorf("no terminal to ask for the password on: set %s, or pipe it in with --password-stdin", s.env)
	}
	return errors.New("no terminal to ask for the password on: pipe it in with --password-stdin")
}
