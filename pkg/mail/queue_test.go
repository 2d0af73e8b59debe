package mail

import (
	"context"
	"errors"
	"fmt"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/mail/mailtest"
)

// fakeMailer records mails; SendFunc, if set, decides each send's result.
type fakeMailer struct {
	SendFunc func(ctx context.Context, m account.Mail, attempt int) error

	mu       sync.Mutex
	sent     []account.Mail
	attempts map[string]int // by recipient
}

func (f *fakeMailer) Send(ctx context.Context, m account.Mail) error {
	f.mu.Lock()
	if f.attempts == nil {
		f.attempts = map[string]int{}
	}
	f.attempts[m.To]++
	attempt := f.attempts[m.To]
	f.mu.Unlock()
	if f.SendFunc != nil {
		if err := f.SendFunc(ctx, m, attempt); err != nil {
			return err
		}
	}
	f.mu.Lock()
	f.sent = append(f.sent, m)
	f.mu.Unlock()
	return nil
}

func (f *fakeMailer) sentTo() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var to []string
	for _, m := range f.sent {
		to = append(to, m.To)
	}
	return to
}

func (f *fakeMailer) attemptsTo(to string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attempts[to]
}

func notice(to string) account.Mail {
	return account.Mail{Kind: account.MailPasswordChanged, To: to}
}

func checkCounts(t *testing.T, q *Queue, sent, failed, dropped uint64) {
	t.Helper()
	if q.Sent() != sent || q.Failed() != failed || q.Dropped() != dropped {
		t.Errorf("sent/failed/dropped = %d/%d/%d, want %d/%d/%d", q.Sent(), q.Failed(), q.Dropped(), sent, failed, dropped)
	}
}

// Every queue test runs in a synctest bubble: time is fake (backoff waits
// take no real time), and the test fails if a goroutine of the bubble is
// still around when the test function returns (a leaked worker).

func TestQueueDeliversInOrderAndDrains(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		next := &fakeMailer{}
		logger, _ := testLogger(t)
		q := NewQueue(next, logger, 10)
		var want []string
		for i := range 10 {
			to := fmt.Sprintf("u%d@example.com", i)
			want = append(want, to)
			if err := q.Send(t.Context(), notice(to)); err != nil {
				t.Fatal(err)
			}
		}
		if err := q.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := next.sentTo(); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("sent %q, want %q", got, want)
		}
		checkCounts(t, q, 10, 0, 0)
		if err := q.Send(t.Context(), notice("late@example.com")); !errors.Is(err, ErrQueueClosed) {
			t.Errorf("Send after Close = %v, want ErrQueueClosed", err)
		}
		if err := q.Close(t.Context()); err != nil {
			t.Errorf("second Close = %v", err)
		}
	})
}

func TestQueueSendDoesNotWait(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		next := &fakeMailer{SendFunc: func(ctx context.Context, m account.Mail, _ int) error {
			<-release // a relay that takes its time
			return nil
		}}
		logger, logs := testLogger(t)
		q := NewQueue(next, logger, 2)

		if err := q.Send(t.Context(), notice("a@example.com")); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the worker holds a@ and waits for the relay
		for _, to := range []string{"b@example.com", "c@example.com", "d@example.com", "e@example.com"} {
			start := time.Now()
			if err := q.Send(t.Context(), notice(to)); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d != 0 {
				t.Errorf("Send(%s) took %v of (fake) time", to, d)
			}
		}
		checkCounts(t, q, 0, 0, 2) // b and c wait in the queue, d and e are dropped
		if !strings.Contains(logs.String(), `msg="mail queue full, mail dropped"`) {
			t.Errorf("no warning logged:\n%s", logs)
		}
		close(release)
		if err := q.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := next.sentTo(); strings.Join(got, " ") != "a@example.com b@example.com c@example.com" {
			t.Errorf("sent %q", got)
		}
		checkCounts(t, q, 3, 0, 2)
	})
}

func TestQueueRetries(t *testing.T) {
	t.Parallel()
	temporary := &textproto.Error{Code: 451, Msg: "4.3.0 try again later"}
	tests := []struct {
		name         string
		failures     int   // attempts that fail before one succeeds
		err          error // the failure
		wantAttempts int
		wantSent     bool
		wantWaited   time.Duration
	}{
		{"first try", 0, nil, 1, true, 0},
		{"second try", 1, temporary, 2, true, 5 * time.Second},
		{"third try", 2, temporary, 3, true, 35 * time.Second},
		{"gives up", 3, temporary, 3, false, 35 * time.Second},
		{"network error is retried", 1, errors.New("dial tcp: connection refused"), 2, true, 5 * time.Second},
		{"5xx is permanent", 1, &textproto.Error{Code: 550, Msg: "5.1.1 no such user"}, 1, false, 0},
		{"invalid mail is permanent", 1, fmt.Errorf("x: %w", ErrInvalidMail), 1, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				next := &fakeMailer{SendFunc: func(_ context.Context, _ account.Mail, attempt int) error {
					if attempt <= tt.failures {
						return tt.err
					}
					return nil
				}}
				logger, logs := testLogger(t)
				q := NewQueue(next, logger, 1)
				start := time.Now()
				if err := q.Send(t.Context(), notice("a@example.com")); err != nil {
					t.Fatal(err)
				}
				if err := q.Close(t.Context()); err != nil {
					t.Fatal(err)
				}
				if waited := time.Since(start); waited != tt.wantWaited {
					t.Errorf("delivery took %v, want %v", waited, tt.wantWaited)
				}
				if got := next.attemptsTo("a@example.com"); got != tt.wantAttempts {
					t.Errorf("%d attempts, want %d", got, tt.wantAttempts)
				}
				if tt.wantSent {
					checkCounts(t, q, 1, 0, 0)
				} else {
					checkCounts(t, q, 0, 1, 0)
					if !strings.Contains(logs.String(), `level=ERROR msg="mail not sent"`) {
						t.Errorf("failure not logged:\n%s", logs)
					}
				}
			})
		})
	}
}

// TestQueueCloseGivesUp closes a queue whose relay hangs: Close returns
// when its context ends, the delivery under way is aborted and the rest
// dropped, and the worker is gone.
func TestQueueCloseGivesUp(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		next := &fakeMailer{SendFunc: func(ctx context.Context, _ account.Mail, _ int) error {
			<-ctx.Done() // hangs until the queue gives up
			return ctx.Err()
		}}
		logger, logs := testLogger(t)
		q := NewQueue(next, logger, 10)
		for _, to := range []string{"a@example.com", "b@example.com", "c@example.com"} {
			if err := q.Send(t.Context(), notice(to)); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		start := time.Now()
		err := q.Close(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close = %v, want a deadline error", err)
		}
		if d := time.Since(start); d != 10*time.Second {
			t.Errorf("Close took %v, want 10s", d)
		}
		select {
		case <-q.done:
		default:
			t.Fatal("worker still running after Close returned")
		}
		checkCounts(t, q, 0, 1, 2)
		if !strings.Contains(logs.String(), "mail queue closed before all mails were sent") {
			t.Errorf("drop not logged:\n%s", logs)
		}
	})
}

// TestQueueCloseDuringBackoff closes a queue that is waiting to retry.
func TestQueueCloseDuringBackoff(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		next := &fakeMailer{SendFunc: func(context.Context, account.Mail, int) error {
			return errors.New("dial tcp: connection refused")
		}}
		logger, _ := testLogger(t)
		q := NewQueue(next, logger, 10)
		if err := q.Send(t.Context(), notice("a@example.com")); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := q.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close = %v, want a deadline error", err)
		}
		if got := next.attemptsTo("a@example.com"); got != 1 {
			t.Errorf("%d attempts, want 1", got)
		}
		checkCounts(t, q, 0, 1, 0)
	})
}

func TestQueueRejectsInvalidMail(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		next := &fakeMailer{}
		logger, _ := testLogger(t)
		q := NewQueue(next, logger, 1)
		defer q.Close(t.Context())
		if err := q.Send(t.Context(), account.Mail{Kind: "nonsense", To: "a@example.com"}); !errors.Is(err, ErrUnknownKind) {
			t.Errorf("Send(unknown kind) = %v", err)
		}
		if err := q.Send(t.Context(), account.Mail{Kind: account.MailVerifyEmail, To: "a@example.com"}); !errors.Is(err, ErrInvalidMail) {
			t.Errorf("Send(no link) = %v", err)
		}
	})
}

// TestQueueSMTP runs a Queue in front of SMTP and a real server that
// rejects one recipient: that mail fails, is logged, and the next one is
// still delivered.
func TestQueueSMTP(t *testing.T) {
	t.Parallel()
	srv := mailtest.NewServer(t, mailtest.Options{RejectRcpt: "nobody@example.com"})
	logger, logs := testLogger(t)
	s, err := NewSMTP(fmt.Sprintf("smtp://%s", srv.Addr()), testFrom, logger)
	if err != nil {
		t.Fatal(err)
	}
	q := NewQueue(s, logger, 10)
	bad := account.Mail{Kind: account.MailVerifyEmail, To: "nobody@example.com", Link: testLink}
	good := account.Mail{Kind: account.MailVerifyEmail, To: "ada@example.com", Language: "fr", Link: testLink}
	for _, m := range []account.Mail{bad, good} {
		if err := q.Send(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	got := srv.Next(t)
	checkMessage(t, got.Data, good, time.Now())
	if err := q.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-q.done:
	default:
		t.Fatal("worker still running after Close")
	}
	srv.None(t)
	checkCounts(t, q, 1, 1, 0)
	log := logs.String()
	if !strings.Contains(log, `level=ERROR msg="mail not sent" kind=verify_email to=nobody@example.com attempts=1`) || !strings.Contains(log, "550") {
		t.Errorf("rejection not logged as expected:\n%s", log)
	}
}
