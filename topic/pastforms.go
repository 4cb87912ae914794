package topic

import (
	_ "embed"
	"strings"
	"sync"
)

//go:generate go run gen_pastforms.go -wordnet /usr/share/wordnet -o pastforms.txt -verbs verbs.txt

// pastFormsText is the list of English past forms, derived from WordNet 3.0
// by gen_pastforms.go (see WORDNET-LICENSE): "FORM BASE..." lines, a base
// marked "~" when FORM is not to be suggested for it.
//
//go:embed pastforms.txt
var pastFormsText string

var (
	// pastForms holds every listed past tense and past participle: held,
	// written, read, stopped.
	pastForms map[string]struct{}
	// pastOf maps a listed base verb to the past form suggested for it:
	// hold→held, write→written, stop→stopped.
	pastOf map[string]string
	// notPastEd holds words ending in "ed" that are no past form: bases
	// such as speed, feed, embed (listed with their pasts sped, fed,
	// embedded) and the words verb.exc marks as their own base (seed).
	notPastEd map[string]struct{}
	// presentOf maps the irregular present forms that verb.exc lists to
	// their base: has→have, is→be, quizzes→quiz.
	presentOf map[string]string
	// sameBase holds the listed verbs whose past form or participle is the
	// base itself: read, set, put, come, run.
	sameBase map[string]struct{}
)

func init() {
	pastForms = make(map[string]struct{}, 1600)
	notPastEd = make(map[string]struct{}, 32)
	presentOf = make(map[string]string, 32)
	byBase := make(map[string][]string, 1400)
	var tildeBases []string
	for line := range strings.SplitSeq(pastFormsText, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0 || strings.HasPrefix(f[0], "#"):
			continue
		case strings.HasPrefix(f[0], "!"): // seed: no past form
			notPastEd[f[0][1:]] = struct{}{}
			continue
		case strings.HasPrefix(f[0], "-") && len(f) >= 2: // has have
			presentOf[f[0][1:]] = f[1]
			continue
		case len(f) < 2:
			continue
		}
		pastForms[f[0]] = struct{}{}
		for _, b := range f[1:] {
			if nb, ok := strings.CutPrefix(b, "~"); ok { // never suggested
				tildeBases = append(tildeBases, nb)
			} else {
				byBase[b] = append(byBase[b], f[0])
			}
		}
	}
	pastOf = make(map[string]string, len(byBase))
	sameBase = make(map[string]struct{}, 100)
	for b, forms := range byBase {
		best := ""
		for _, f := range forms {
			if f == b {
				sameBase[b] = struct{}{} // read, set: accepted as it is
				continue
			}
			if best == "" || preferPast(f, best) {
				best = f
			}
		}
		if best != "" {
			pastOf[b] = best
		}
		if _, past := pastForms[b]; !past && strings.HasSuffix(b, "ed") {
			notPastEd[b] = struct{}{} // speed: sped
		}
	}
	for _, b := range tildeBases {
		if _, past := pastForms[b]; !past && strings.HasSuffix(b, "ed") {
			notPastEd[b] = struct{}{} // overfeed: overfed
		}
	}
}

// preferPast reports whether past form a reads better than b in an event
// name: a regular "-ed" form (worked over wrought, penned over pent), then a
// participle (begun over began, written over wrote, done over did), then the
// first in alphabetical order.
func preferPast(a, b string) bool {
	if ra, rb := strings.HasSuffix(a, "ed"), strings.HasSuffix(b, "ed"); ra != rb {
		return ra
	}
	if ua, ub := vowelUA(a, b), vowelUA(b, a); ua != ub {
		return ua
	}
	if pa, pb := endsLikeParticiple(a), endsLikeParticiple(b); pa != pb {
		return pa
	}
	return a < b
}

// endsLikeParticiple reports whether a past form ends like a participle:
// in "n" or "ne" (taken, done, gone).
func endsLikeParticiple(s string) bool {
	return strings.HasSuffix(s, "n") || strings.HasSuffix(s, "ne")
}

// vowelUA reports whether a is b with a "u" for an "a": begun for began,
// sung for sang, the participle for the simple past.
func vowelUA(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	diff := -1
	for i := 0; i < len(a); i++ {
		if a[i] != b[i] {
			if diff >= 0 {
				return false
			}
			diff = i
		}
	}
	return diff >= 0 && a[diff] == 'u' && b[diff] == 'a'
}

// verbsText is the list of English verbs, one a line, that may be given a
// regular past form as a suggestion: WordNet 3.0's one-word verb lemmas and
// the few gen_pastforms.go adds (see WORDNET-LICENSE).
//
//go:embed verbs.txt
var verbsText string

// verbSet returns the verbs of verbsText. It is built on first use, on the
// path of a rejected name, so that a program that never gets one does not
// pay for it; the keys share verbsText's memory.
var verbSet = sync.OnceValue(func() map[string]struct{} {
	m := make(map[string]struct{}, 8500)
	for line := range strings.SplitSeq(verbsText, "\n") {
		if line != "" && line[0] != '#' {
			m[line] = struct{}{}
		}
	}
	return m
})

// isVerb reports whether word is a verb the list knows: WordNet's verb
// lemmas (visit, open, sync, invoice) and a few more (upsert, onboard);
// not payment, checkout or customer. It costs a map lookup.
func isVerb(word string) bool {
	_, ok := verbSet()[word]
	return ok
}

// isPast reports whether word is a past tense or past participle: a listed
// form (held, written, read, stopped), or a word ending in "ed" that is not
// a verb the list knows for another past (speed: sped; feed: fed). It costs
// a map lookup or two.
func isPast(word string) bool {
	if strings.HasSuffix(word, "ed") {
		_, not := notPastEd[word] // no listed form is in notPastEd
		return !not
	}
	_, ok := pastForms[word]
	return ok
}

// verbPrefixes are prefixes that make a verb from a verb: resend, reapply,
// prebuild, unpin, overlap.
var verbPrefixes = []string{
	"counter", "fore", "in", "inter", "mis", "out", "over", "pre", "re", "sub",
	"un", "under", "up", "with",
}

// prefixedPast handles a word that is not listed but is a verb prefix
// followed by a listed verb of at least three letters. ok is false for any
// other word. The past is the prefix and the verb's past when that is the
// regular form with its spelling (reapply→reapplied, unpin→unpinned,
// resubmit→resubmitted), and "" otherwise: an irregular past may not carry
// over (relay is relayed, not relaid), and WordNet lists the prefixed
// irregular verbs it knows (rebuild, withhold, undergo). A word made of a
// prefix and an irregular past form (resent, resold, unsold; not present,
// whose "pre" is no prefix of "sent") gets no past either.
func prefixedPast(word string) (past string, ok bool) {
	for _, p := range verbPrefixes {
		rest, found := strings.CutPrefix(word, p)
		if !found || len(rest) < 3 {
			continue
		}
		if rp, listed := pastOf[rest]; listed {
			if spelledRegular(rest, rp) {
				return p + rp, true
			}
			return "", true
		}
		if _, same := sameBase[rest]; same {
			return "", true // subset, preset, unread: set, read
		}
		if _, past := pastForms[rest]; past && p != "pre" && p != "in" && p != "sub" && len(rest) >= 4 {
			return "", true
		}
	}
	return "", false
}

// spelledRegular reports whether past is the regular past of base with a
// spelling rule applied: stopped, applied, panicked, travelled, worked; not
// fled (flee) or led (lead).
func spelledRegular(base, past string) bool {
	return strings.HasSuffix(past, "ed") && len(past) > len(base) && strings.HasPrefix(past, base[:len(base)-1])
}

// regularPast returns the regular past of word, a verb that is not listed,
// or "" when that form would likely be wrong.
func regularPast(word string) string {
	n := len(word)
	last := word[n-1]
	switch {
	case n < 2 || strings.ContainsAny(word, "0123456789"):
		return "" // x, v2: not a verb
	case n > 4 && strings.HasSuffix(word, "ing"):
		return "" // creating: an -ing form, whose "past" is no word
	case last == 's' && !strings.HasSuffix(word, "ss") && !strings.HasSuffix(word, "us") &&
		!strings.HasSuffix(word, "is") && !strings.HasSuffix(word, "as"):
		return "" // creates, ships: a third-person form or a plural
	}
	if past, ok := prefixedPast(word); ok {
		return past
	}
	switch {
	case last == 'e':
		return word + "d"
	case last == 'y' && n >= 2 && isConsonant(word[n-2]):
		return word[:n-1] + "ied"
	case n >= 3 && isConsonant(last) && last != 'c' && last != 'w' && last != 'x' && last != 'y' &&
		isVowel(word[n-2]) && isConsonant(word[n-3]) && vowels(word) == 1:
		return word + string(last) + "ed"
	}
	return word + "ed"
}
