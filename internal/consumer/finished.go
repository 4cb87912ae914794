package consumer

import (
	"strconv"
	"strings"
)

// The offsets finished above a partition's commit point travel with the
// commit, in the commit's metadata, so that after a crash or a rebalance
// the next owner skips them instead of handling them again: only the
// events that were unfinished come again.
//
// The format is "f1:" followed by comma-separated ranges of finished
// offsets, each "<gap>.<length>" in base 36, where gap is the range's first
// offset minus the end of the previous range (the commit offset for the
// first) and length its last offset minus its first. Ranges run over
// finished records only; offsets inside a range that hold no record (a
// compacted or transaction-marker offset) are harmless. The list is cut at
// maxFinishedBytes, under Kafka's default offset.metadata.max.bytes
// (4,096), or at the lower limit a broker's rejection taught the group
// (commitParts): ranges beyond it are simply handled again.
const (
	finishedPrefix   = "f1:"
	maxFinishedBytes = 3_000
)

// span is a range of finished offsets, first and last included.
type span struct{ first, last int64 }

// encodeFinished encodes spans above commit (sorted, disjoint) in at most
// limit bytes.
func encodeFinished(commit int64, spans []span, limit int) string {
	if len(spans) == 0 || limit <= len(finishedPrefix) {
		return ""
	}
	var b strings.Builder
	b.WriteString(finishedPrefix)
	prev := commit
	for i, s := range spans {
		item := strconv.FormatInt(s.first-prev, 36) + "." + strconv.FormatInt(s.last-s.first, 36)
		if b.Len()+len(item)+1 > limit {
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(item)
		prev = s.last
	}
	return b.String()
}

// decodeFinished decodes what encodeFinished wrote for commit; anything
// else (another client's metadata, a damaged string) yields nothing, which
// only means those events are handled again.
func decodeFinished(commit int64, meta string) []span {
	rest, ok := strings.CutPrefix(meta, finishedPrefix)
	if !ok || rest == "" || commit < 0 {
		return nil
	}
	var spans []span
	prev := commit
	for item := range strings.SplitSeq(rest, ",") {
		gapText, lenText, ok := strings.Cut(item, ".")
		if !ok {
			return nil
		}
		gap, err1 := strconv.ParseInt(gapText, 36, 64)
		length, err2 := strconv.ParseInt(lenText, 36, 64)
		// Every range starts after an unfinished offset: gap >= 1.
		if err1 != nil || err2 != nil || gap < 1 || length < 0 {
			return nil
		}
		s := span{first: prev + gap, last: prev + gap + length}
		spans = append(spans, s)
		prev = s.last
	}
	return spans
}
