package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/textproto"
	"sync"
	"sync/atomic"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/blindrelay/blindrelay/pkg/account"
)

// ErrQueueClosed is returned by Queue.Send after Close.
var ErrQueueClosed = errors.New("mail queue closed")

// defaultRetryBackoff are the waits before the second and third attempt
// to deliver a mail whose delivery failed for a reason that may pass (the
// relay unreachable, a 4xx answer). A mail is given up after len+1
// attempts.
var defaultRetryBackoff = []time.Duration{5 * time.Second, 30 * time.Second}

// Queue is an account.Mailer that delivers in the background through
// another Mailer (normally SMTP), one mail at a time.
//
// Its reason to exist is timing: the API answers the same to known and
// unknown e-mail addresses, but mails only the known ones, so if requests
// waited for the relay, the answer time would tell which addresses have
// accounts. Send therefore never blocks and never fails because of
// delivery: when the queue is full, the mail is dropped, counted and logged
// at level warn, and Send still returns nil.
//
// A failed delivery is retried a few times with growing waits unless the
// failure is permanent (a 5xx answer such as an unknown recipient, or an
// invalid mail); a mail that cannot be delivered is logged at level error.
type Queue struct {
	next    account.Mailer
	logger  *slog.Logger
	backoff []time.Duration // waits between attempts

	mu     sync.RWMutex // guards closed and sending on mails (Close closes it)
	closed bool
	mails  chan account.Mail

	cancel context.CancelFunc // ends the worker's context: Close gives up
	done   chan struct{}      // closed when the worker has returned

	sent, failed, dropped atomic.Uint64
}

// NewQueue starts a Queue of up to size waiting mails (at least 1) in
// front of next. Close it to stop its goroutine. A nil logger discards.
func NewQueue(next account.Mailer, logger *slog.Logger, size int) *Queue {
	// Deliveries outlive the requests that queue them, so the worker has
	// a context of its own, which only Close ends.
	ctx, cancel := context.WithCancel(context.Background())
	q := &Queue{
		next:    next,
		logger:  orDiscard(logger),
		backoff: defaultRetryBackoff,
		mails:   make(chan account.Mail, max(size, 1)),
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	go q.run(ctx)
	return q
}

// Send queues m and returns at once. It returns an error only for a mail
// that can never be sent (see Render), which does not depend on the
// recipient's account, and ErrQueueClosed after Close. ctx is not used:
// delivery outlives the request that caused it.
func (q *Queue) Send(_ context.Context, m account.Mail) error {
	if _, _, err := Render(m); err != nil {
		return fmt.Errorf("mail queue: %w", err)
	}
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return ErrQueueClosed
	}
	select {
	case q.mails <- m:
	default:
		n := q.dropped.Add(1)
		q.logger.Warn("mail queue full, mail dropped", "kind", m.Kind, "to", m.To, "dropped_total", n)
	}
	return nil
}

// Close stops taking mails and waits until the queued ones are delivered
// or given up. If ctx ends first, it aborts the delivery under way, drops
// the rest (logging how many) and returns ctx's error once the goroutine
// has ended. Close may be called more than once.
func (q *Queue) Close(ctx context.Context) error {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.mails)
	}
	q.mu.Unlock()
	select {
	case <-q.done:
		q.cancel()
		return nil
	case <-ctx.Done():
		q.cancel()
		<-q.done
		return fmt.Errorf("mail queue: close: %w", ctx.Err())
	}
}

// Sent returns how many mails were delivered.
func (q *Queue) Sent() uint64 { return q.sent.Load() }

// Failed returns how many mails were given up after trying.
func (q *Queue) Failed() uint64 { return q.failed.Load() }

// Dropped returns how many mails were dropped without trying: the queue
// was full, or Close gave up before their turn.
func (q *Queue) Dropped() uint64 { return q.dropped.Load() }

// run is the worker: it delivers mails until the channel is closed and
// empty.
func (q *Queue) run(ctx context.Context) {
	defer close(q.done)
	var abandoned int
	for m := range q.mails {
		if ctx.Err() != nil {
			abandoned++
			continue
		}
		q.deliver(ctx, m)
	}
	if abandoned > 0 {
		q.dropped.Add(uint64(abandoned))
		q.logger.Warn("mail queue closed before all mails were sent", "dropped", abandoned)
	}
}

// deliver sends m, retrying as the Queue doc says.
func (q *Queue) deliver(ctx context.Context, m account.Mail) {
	for attempt := 1; ; attempt++ {
		err := q.next.Send(ctx, m)
		if err == nil {
			q.sent.Add(1)
			return
		}
		if permanent(err) || attempt > len(q.backoff) || ctx.Err() != nil {
			q.failed.Add(1)
			q.logger.Error("mail not sent", "kind", m.Kind, "to", m.To, "attempts", attempt, "error", err)
			return
		}
		wait := q.backoff[attempt-1]
		q.logger.Warn("mail not sent, will retry", "kind", m.Kind, "to", m.To, "attempt", attempt, "retry_in", wait, "error", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			q.failed.Add(1)
			q.logger.Error("mail not sent", "kind", m.Kind, "to", m.To, "attempts", attempt, "error", err)
			return
		}
	}
}

// permanent reports whether trying again cannot help: the mail itself is
// invalid, or the relay answered with a 5xx code.
func permanent(err error) bool {
	if errors.Is(err, ErrInvalidMail) || errors.Is(err, ErrUnknownKind) {
		return true
	}
	if se, ok := errors.AsType[*gomail.SendError](err); ok {
		return se.ErrorCode() >= 500 && se.ErrorCode() < 600
	}
	if te, ok := errors.AsType[*textproto.Error](err); ok {
		return te.Code >= 500 && te.Code < 600
	}
	return false
}
