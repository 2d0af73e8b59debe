package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"sync"
)

// logCounter counts the lines of the relay's JSON log whose "msg" is one
// of a few messages. It reads the file incrementally, from where the last
// call stopped, so polling a large log stays cheap.
type logCounter struct {
	path string

	mu     sync.Mutex
	offset int64
	rest   []byte // an incomplete last line
	counts map[string]int
}

// newLogCounter counts msgs in the log at path.
func newLogCounter(path string, msgs ...string) *logCounter {
	c := &logCounter{path: path, counts: map[string]int{}}
	for _, m := range msgs {
		c.counts[m] = 0
	}
	return c
}

// count reads what the log gained and returns how many lines so far have
// msg (which must be one of newLogCounter's). A log that cannot be read
// counts what was read before.
func (c *logCounter) count(msg string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.readLocked()
	return c.counts[msg]
}

// readLocked reads the new part of the log. The caller holds c.mu.
func (c *logCounter) readLocked() {
	f, err := os.Open(c.path)
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := f.Seek(c.offset, io.SeekStart); err != nil {
		return
	}
	data, err := io.ReadAll(f)
	c.offset += int64(len(data))
	data = append(c.rest, data...)
	end := bytes.LastIndexByte(data, '\n')
	if end < 0 {
		c.rest = data
		return
	}
	c.rest = append([]byte(nil), data[end+1:]...)
	for line := range bytes.SplitSeq(data[:end], []byte("\n")) {
		c.countLine(line)
	}
	_ = err // what was read is counted; the rest next time
}

// countLine counts one log line.
func (c *logCounter) countLine(line []byte) {
	maybe := false
	for m := range c.counts {
		if bytes.Contains(line, []byte(m)) {
			maybe = true
			break
		}
	}
	if !maybe {
		return
	}
	var rec struct {
		Msg string `json:"msg"`
	}
	if json.Unmarshal(line, &rec) != nil {
		return
	}
	if _, ok := c.counts[rec.Msg]; ok {
		c.counts[rec.Msg]++
	}
}
