package consumer

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

func TestFinishedRoundTrip(t *testing.T) {
	spans := []span{{101, 101}, {103, 150}, {5000, 5000}, {1 << 40, 1<<40 + 7}}
	meta := encodeFinished(100, spans, maxFinishedBytes)
	if got := decodeFinished(100, meta); !reflect.DeepEqual(got, spans) {
		t.Fatalf("decode(encode) = %v, want %v (meta %q)", got, spans, meta)
	}
	if encodeFinished(100, nil, maxFinishedBytes) != "" || decodeFinished(100, "") != nil {
		t.Fatal("no spans must encode to and decode from the empty string")
	}
}

func TestFinishedRejectsWhatItDidNotWrite(t *testing.T) {
	for _, meta := range []string{
		"some other client's metadata",
		"f1:",
		"f1:1",        // no length
		"f1:0.1",      // a range at the commit offset itself (gap 0)
		"f1:1.-1",     // negative length
		"f1:zz.1,0.1", // second range not after the first
		"f1:1.1,,2.1", // empty item
		"f1:!.1",
	} {
		if got := decodeFinished(100, meta); got != nil {
			t.Errorf("decodeFinished(%q) = %v, want nothing", meta, got)
		}
	}
}

func TestFinishedIsCutUnderTheMetadataLimit(t *testing.T) {
	var spans []span
	for i := range int64(5000) {
		spans = append(spans, span{1000 + 3*i, 1000 + 3*i})
	}
	meta := encodeFinished(999, spans, maxFinishedBytes)
	if len(meta) > maxFinishedBytes || !strings.HasPrefix(meta, finishedPrefix) {
		t.Fatalf("metadata of %d bytes; want at most %d", len(meta), maxFinishedBytes)
	}
	got := decodeFinished(999, meta)
	if len(got) == 0 || !reflect.DeepEqual(got, spans[:len(got)]) {
		t.Fatalf("a cut list must decode to a prefix of the spans (got %d)", len(got))
	}
}

// TestWindowFinishedSpansSurviveARestart finishes records in random order
// and checks that what a commit carries (point and spans) lets a new owner
// skip exactly the finished records.
func TestWindowFinishedSpansSurviveARestart(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for round := range 100 {
		w := newWindow()
		n := 1 + rng.IntN(200)
		for o := range int64(n) {
			w.add(o, 0)
		}
		done := map[int64]bool{}
		for _, i := range rng.Perm(n)[:rng.IntN(n+1)] {
			w.finish(int64(i))
			done[int64(i)] = true
		}
		point, _ := w.commitPoint()
		spans := decodeFinished(point, encodeFinished(point, w.finishedSpans(), maxFinishedBytes))
		next := &partition{skip: spans}
		for o := range int64(n) {
			if o < point {
				if !done[o] {
					t.Fatalf("round %d: commit point %d passes unfinished offset %d", round, point, o)
				}
				continue
			}
			if next.skipped(o) != done[o] {
				t.Fatalf("round %d: offset %d finished=%v but skipped=%v", round, o, done[o], !done[o])
			}
		}
	}
}
