package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is the unit of utime and stime in /proc/PID/stat (USER_HZ,
// sysconf(_SC_CLK_TCK)), which is 100 on every Linux architecture Go runs
// on.
const clockTicks = 100

// stopGrace is how long a child gets to stop after SIGTERM before its
// process group is killed.
const stopGrace = 20 * time.Second

// child is a process relayload started, in a process group of its own so
// that stopping it stops whatever it started too. The kernel kills it
// (SIGKILL) if relayload dies first.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	err     error         // what Wait returned; read after done
}

// startChild starts argv with env, its stdout and stderr appended to
// logPath.
func startChild(name, logPath string, env []string, argv ...string) (*child, error) {
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s: log: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("%s: start %s: %w", name, argv[0], err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		logFile.Close()
		close(c.done)
	}()
	return c, nil
}

// pid is the child's process id (and process group id).
func (c *child) pid() int { return c.cmd.Process.Pid }

// exited reports whether the child has exited.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// exitError describes how the child ended, with the end of its log.
func (c *child) exitError() error {
	return fmt.Errorf("%s exited early (%v); its log %s ends:\n%s", c.name, c.err, c.logPath, tail(c.logPath, 15))
}

// stop ends the child's process group: SIGTERM, then SIGKILL after grace.
// It returns when the child has exited, and the error of a child that did
// not stop cleanly on SIGTERM.
func (c *child) stop(grace time.Duration) error {
	if c.exited() {
		return nil
	}
	syscall.Kill(-c.pid(), syscall.SIGTERM)
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-c.done:
		// A process group may outlive its leader; nothing of ours should.
		syscall.Kill(-c.pid(), syscall.SIGKILL)
		if c.err != nil {
			return fmt.Errorf("%s: %w", c.name, c.err)
		}
		return nil
	case <-timer.C:
		syscall.Kill(-c.pid(), syscall.SIGKILL)
		<-c.done
		return fmt.Errorf("%s did not stop within %v of SIGTERM; killed", c.name, grace)
	}
}

// tail returns the last n lines of the file at path, for error messages.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

// procSample is what /proc says about a process at one moment.
type procSample struct {
	At       time.Time
	RSSKiB   int64         // VmRSS: resident memory
	AnonKiB  int64         // RssAnon: the resident part that is not file-backed (heap, stacks)
	HWMKiB   int64         // VmHWM: the highest VmRSS so far
	Threads  int           // OS threads
	FDs      int           // open file descriptors
	CPU      time.Duration // user + system time so far
	UserCPU  time.Duration
	SysCPU   time.Duration
	Exists   bool
	ReadTime time.Duration // how long reading /proc took (it is cheap; kept for sanity)
}

// readProc samples process pid from /proc.
func readProc(pid int) (procSample, error) {
	start := time.Now()
	s := procSample{At: start}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("read /proc/%d/status: %w", pid, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(val)
		if len(fields) == 0 {
			continue
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			continue
		}
		switch key {
		case "VmRSS":
			s.RSSKiB = n
		case "RssAnon":
			s.AnonKiB = n
		case "VmHWM":
			s.HWMKiB = n
		case "Threads":
			s.Threads = int(n)
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, fmt.Errorf("read /proc/%d/stat: %w", pid, err)
	}
	s.UserCPU, s.SysCPU, err = parseStatCPU(stat)
	if err != nil {
		return s, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	s.CPU = s.UserCPU + s.SysCPU
	if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		s.FDs = len(fds)
	}
	s.Exists = true
	s.ReadTime = time.Since(start)
	return s, nil
}

// parseStatCPU returns utime and stime (fields 14 and 15) of a
// /proc/PID/stat line. The command name (field 2) is in parentheses and may
// hold spaces and parentheses itself, so fields are counted after the last
// ')'.
func parseStatCPU(stat []byte) (user, sys time.Duration, err error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, errors.New("no ')' after the command name")
	}
	fields := strings.Fields(string(stat[i+1:]))
	// fields[0] is field 3 (state), so field k is fields[k-3].
	if len(fields) < 13 {
		return 0, 0, fmt.Errorf("only %d fields", len(fields)+2)
	}
	ticks := func(s string) (time.Duration, error) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, err
		}
		return time.Duration(n) * time.Second / clockTicks, nil
	}
	if user, err = ticks(fields[11]); err != nil {
		return 0, 0, fmt.Errorf("utime: %w", err)
	}
	if sys, err = ticks(fields[12]); err != nil {
		return 0, 0, fmt.Errorf("stime: %w", err)
	}
	return user, sys, nil
}
