package boltstore_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/sessionkit/sessions/boltstore"
)

// The lock tests run a second process: the test binary itself, re-executed
// with helperEnv set, which TestMain hands to helperMain.

const (
	pathEnv = "BOLTSTORE_TEST_PATH"
	idEnv   = "BOLTSTORE_TEST_ID"
	// helperTimeout is the OpenTimeout of the helper's Open.
	helperTimeout = 300 * time.Millisecond
)

// helperMain is the second process. Modes:
//   - "open": open the file with a short OpenTimeout; on failure print the
//     error to stderr and exit 3; else print the data of the record with
//     the id and exit 0.
//   - "hold": open the file, create the record with the id ("held"),
//     print "holding", and keep the file until stdin closes.
func helperMain(mode string) int {
	path, id := os.Getenv(pathEnv), os.Getenv(idEnv)
	timeout := helperTimeout
	if mode == "hold" {
		timeout = 10 * time.Second
	}
	s, err := boltstore.Open(path, &boltstore.Options{OpenTimeout: timeout})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	defer s.Close()
	switch mode {
	case "open":
		data, _, _, found, err := s.Load(bg, id, t0)
		if err != nil || !found {
			fmt.Fprintf(os.Stderr, "Load = %v, %v\n", found, err)
			return 4
		}
		fmt.Printf("%s\n", data)
	case "hold":
		if _, err := s.Create(bg, id, []byte("held"), t0.Add(time.Hour), "", t0); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 4
		}
		fmt.Println("holding")
		_, _ = io.Copy(io.Discard, os.Stdin)
	default:
		fmt.Fprintf(os.Stderr, "unknown helper mode %q\n", mode)
		return 2
	}
	return 0
}

// helper returns the command that runs helperMain in a new process.
func helper(path, id, mode string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, pathEnv+"="+path, idEnv+"="+id)
	return cmd
}

// TestSecondProcessGetsClearError opens the file here and runs a second
// process that tries to open it too: it must fail with the lock error
// within its OpenTimeout, not hang; once the file is closed here, the same
// process opens it and reads what this one wrote.
func TestSecondProcessGetsClearError(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	id := testID(t, 1)
	s, err := boltstore.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Create(bg, id, []byte("written by the first process"), t0.Add(time.Hour), "", t0); err != nil || !ok {
		t.Fatalf("Create = %v, %v", ok, err)
	}

	var stdout, stderr bytes.Buffer
	cmd := helper(path, id, "open")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	elapsed := time.Since(start)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("second process: %v (stdout %q, stderr %q); want exit status 3, a failed Open", err, stdout.String(), stderr.String())
	}
	msg := stderr.String()
	for _, want := range []string{path, boltstore.ErrLocked.Error(), helperTimeout.String()} {
		if !strings.Contains(msg, want) {
			t.Errorf("second process's error %q does not mention %q", msg, want)
		}
	}
	// Process start-up plus the OpenTimeout, with room for a loaded
	// machine; a hang would take the test's whole timeout.
	if elapsed > helperTimeout+10*time.Second {
		t.Errorf("second process took %v to give up", elapsed)
	}
	t.Logf("second process gave up after %v: %s", elapsed, strings.TrimSpace(msg))

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	stderr.Reset()
	cmd = helper(path, id, "open")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("second process after Close: %v (stderr %q)", err, stderr.String())
	}
	if got := strings.TrimSpace(stdout.String()); got != "written by the first process" {
		t.Errorf("second process read %q", got)
	}
}

// TestOpenWhileAnotherProcessHolds is the other direction: another process
// holds the file, and Open here fails within OpenTimeout with an error that
// wraps ErrLocked and bolterrors.ErrTimeout; when that process exits, Open
// succeeds and sees its record.
func TestOpenWhileAnotherProcessHolds(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	id := testID(t, 1)
	cmd := helper(path, id, "hold")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		_ = cmd.Wait()
	}()
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		line <- l
	}()
	select {
	case l := <-line:
		if l != "holding\n" {
			t.Fatalf("helper said %q (stderr %q)", l, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("helper did not open the file within 30 s (stderr %q)", stderr.String())
	}

	const timeout = 250 * time.Millisecond
	start := time.Now()
	s, err := boltstore.Open(path, &boltstore.Options{OpenTimeout: timeout})
	elapsed := time.Since(start)
	if s != nil || !errors.Is(err, boltstore.ErrLocked) || !errors.Is(err, bolterrors.ErrTimeout) {
		t.Fatalf("Open of a file another process holds = %v, %v; want ErrLocked", s, err)
	}
	if elapsed < timeout/2 || elapsed > timeout+2*time.Second {
		t.Errorf("Open gave up after %v, want about %v", elapsed, timeout)
	}
	t.Logf("Open gave up after %v: %v", elapsed, err)

	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v (stderr %q)", err, stderr.String())
	}
	s, err = boltstore.Open(path, &boltstore.Options{OpenTimeout: timeout})
	if err != nil {
		t.Fatalf("Open after the other process exited: %v", err)
	}
	defer s.Close()
	if data, _, _, found, err := s.Load(bg, id, t0); err != nil || !found || string(data) != "held" {
		t.Errorf("Load of the other process's record = %q, %v, %v", data, found, err)
	}
}

// TestSecondOpenInProcess: bbolt's lock is per open file, so a second Open
// in the same process fails like one from another process, with the
// given OpenTimeout or, for nil options, DefaultOpenTimeout.
func TestSecondOpenInProcess(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	first, err := boltstore.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		opts    *boltstore.Options
		timeout time.Duration
	}{
		{"short timeout", &boltstore.Options{OpenTimeout: 150 * time.Millisecond}, 150 * time.Millisecond},
		{"default timeout", nil, boltstore.DefaultOpenTimeout},
	} {
		start := time.Now()
		s, err := boltstore.Open(path, tc.opts)
		elapsed := time.Since(start)
		if s != nil || !errors.Is(err, boltstore.ErrLocked) {
			t.Fatalf("%s: second Open = %v, %v; want ErrLocked", tc.name, s, err)
		}
		if !strings.HasPrefix(err.Error(), "boltstore: open "+path+": ") {
			t.Errorf("%s: error %q does not start with the operation and path", tc.name, err)
		}
		if elapsed < tc.timeout/2 || elapsed > tc.timeout+2*time.Second {
			t.Errorf("%s: second Open gave up after %v, want about %v", tc.name, elapsed, tc.timeout)
		}
	}
	// The first store still works, and the lock goes with Close.
	if _, err := first.Create(bg, testID(t, 1), nil, t0.Add(time.Hour), "", t0); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second, err := boltstore.Open(path, &boltstore.Options{OpenTimeout: 150 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	defer second.Close()
	if _, _, _, found, err := second.Load(bg, testID(t, 1), t0); err != nil || !found {
		t.Errorf("record written before Close: found=%v err=%v", found, err)
	}
}
