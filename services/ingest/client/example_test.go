package client_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/sluice-ingest/sluice/services/ingest/client"
)

// Stream messages, wait until all are stored, and report what is known
// about each one.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{
		Addr:       "127.0.0.1:9501",
		MaxUnacked: 10_000, // Send blocks beyond this
		OnAck:      func(n uint64) { /* messages 1..n are stored */ },
	})
	if err != nil {
		log.Fatal(err)
	}
	for i := range 1000 {
		if _, err := c.Send(ctx, fmt.Appendf(nil, "event %d", i)); err != nil {
			log.Fatal(err)
		}
	}
	if err := c.WaitAcked(ctx); err != nil {
		log.Printf("not everything was acked: %v", err)
	}
	st := c.Close()
	for seq := uint64(1); seq <= st.Queued; seq++ {
		switch st.Outcome(seq) {
		case client.Acked: // stored (possibly twice, after a resend)
		case client.Indeterminate: // sent, no ack: may or may not be stored
		case client.Unsent: // never left this process
		}
	}
}
