package wallbox

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
)

// ChecksumHeader carries the hex SHA-256 of a download's body. net/http
// writes it in canonical form, X-Content-Sha256.
const ChecksumHeader = "X-Content-SHA256"

// MaxDownloadSize is the largest size GET /api/download serves. The body is
// streamed, but its checksum is computed before the first byte (by
// generating the content once more), which takes seconds per GiB.
const MaxDownloadSize = 16 << 30

// downloadSeed seeds the ChaCha8 generator of the download content: 32
// bytes, part of the format (a client may regenerate the content to check it).
const downloadSeed = "blindrelay devicesim download v1"

// DownloadContent returns the n bytes GET /api/download?size=n serves: the
// first n bytes of math/rand/v2's ChaCha8 stream seeded with the 32 ASCII
// bytes "blindrelay devicesim download v1". Every prefix of a longer
// download is the shorter download.
func DownloadContent(n int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte([]byte(downloadSeed))), n)
}

// DownloadSHA256 returns the hex SHA-256 of DownloadContent(n), as
// ChecksumHeader carries it.
func DownloadSHA256(n int64) string {
	h := sha256.New()
	io.CopyBuffer(h, DownloadContent(n), make([]byte, 64<<10))
	return hex.EncodeToString(h.Sum(nil))
}

// sumCache keeps the checksums of recent download sizes, so that a client
// downloading the same size again does not wait for it.
type sumCache struct {
	mu   sync.Mutex
	sums map[int64]string // guarded by mu
}

const sumCacheSize = 64

func (c *sumCache) get(n int64) string {
	c.mu.Lock()
	sum, ok := c.sums[n]
	c.mu.Unlock()
	if ok {
		return sum
	}
	sum = DownloadSHA256(n)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sums == nil {
		c.sums = make(map[int64]string)
	}
	if len(c.sums) >= sumCacheSize {
		for k := range c.sums { // evict one, whichever
			delete(c.sums, k)
			break
		}
	}
	c.sums[n] = sum
	return sum
}

// handleDownload serves GET /api/download?size=N.
func (w *Wallbox) handleDownload(rw http.ResponseWriter, r *http.Request) {
	n, err := strconv.ParseInt(r.URL.Query().Get("size"), 10, 64)
	if err != nil || n < 0 || n > MaxDownloadSize {
		http.Error(rw, fmt.Sprintf("size must be a number of bytes from 0 to %d", int64(MaxDownloadSize)), http.StatusBadRequest)
		return
	}
	h := rw.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(n, 10))
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="download-%d.bin"`, n))
	h.Set("Cache-Control", "no-store")
	h.Set(ChecksumHeader, w.sums.get(n))
	rw.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	buf := make([]byte, 64<<10)
	if _, err := io.CopyBuffer(rw, DownloadContent(n), buf); err != nil {
		w.log.Debug("download ended early", "size", n, "error", err)
	}
}

// UploadResult is the answer of POST /api/upload.
type UploadResult struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // hex
}

// handleUpload serves POST /api/upload: it hashes the body as it streams in,
// with no size limit, and answers its size and SHA-256.
func (w *Wallbox) handleUpload(rw http.ResponseWriter, r *http.Request) {
	h := sha256.New()
	n, err := io.CopyBuffer(h, r.Body, make([]byte, 64<<10))
	if err != nil {
		w.log.Debug("upload ended early", "size", n, "error", err)
		http.Error(rw, "reading the upload: "+err.Error(), http.StatusBadRequest)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	json.NewEncoder(rw).Encode(UploadResult{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))})
}
