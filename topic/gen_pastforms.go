//go:build ignore

// gen_pastforms rebuilds pastforms.txt, the list of English past tense and
// past participle forms that the topic-name check accepts, and verbs.txt, the
// verbs that may be given a regular past form as a suggestion, from WordNet
// 3.0 as Debian packages it (apt-get install wordnet-base):
//
//	go generate ./topic
//	# or: go run gen_pastforms.go -wordnet /usr/share/wordnet -o pastforms.txt -verbs verbs.txt
//
// It is not needed to build or test the package: its output is committed.
//
// verbs.txt holds WordNet's one-word verb lemmas (index.verb, [a-z]+: not
// "log_in" or "check_out"), sorted, and the few in extraVerbs. A word that is
// neither there nor a base in pastforms.txt is given no suggestion: payment
// and checkout are nouns to WordNet, and "paymented" is no word.
//
// The source is WordNet's verb exception list, verb.exc: one line per
// inflected form that WordNet's morphology (morphy) cannot derive by
// stripping a suffix, "FORM BASE [BASE...]". It holds every irregular past
// tense and past participle (held hold, written write) and the regular forms
// with a spelling change (stopped stop, copied copy, panicked panic), but also
// the -ing and third-person forms with one (stopping stop, quizzes quiz) and
// a few variant spellings of a base (abye aby). The filter keeps the past
// forms:
//
//   - not the lines whose form is its own base (bed bed, seed seed, feed
//     feed fee, shed shed): they keep morphy from stripping "ed" off a base,
//     and are not inflections. Those ending in "ed" are written as "!WORD"
//     lines, words the check must not take for past forms ("shed", whose
//     past is "shed", comes back from samePast);
//   - forms of one lowercase word, [a-z]+ (not "ad-libbed", "had_a_feeling",
//     "ko'd"), with their one-word bases;
//   - not ending in "ing": those are present participles (no English past
//     form ends in "ing");
//   - not ending in "s": those are third-person singular forms (has,
//     quizzes, caddies); "was" is the one English past form ending in "s",
//     kept;
//   - not the present forms of "be" (am, are, is), which the list maps to
//     "be" with its past forms was, were and been.
//
// The third-person forms and the present forms of "be" are written as
// "-FORM BASE" lines, so that the check suggests the base's past for them
// (has: had; quizzes: quizzed) rather than a made-up one ("hased"). The
// -ing forms are left out.
//   - not the variant spellings listed in notInflections;
//
// Two kinds of forms cannot be in verb.exc, since morphy needs no exception
// for them, and are added from the short lists below (the only hand-typed
// data): verbs whose past equals their present (read, set, put, cut, split,
// ...) or whose participle does (come, run), with their prefixed forms that
// WordNet's index.verb lists as verbs (reset, typeset, misread, overcome,
// ...). Prefixed irregular forms that verb.exc leaves out (resold, regrown)
// are derived with the prefixes in irregularPrefixes where index.verb lists
// the prefixed verb, and accepted but never suggested. regularToo adds the
// usual regular form of verbs for which verb.exc holds only an archaic or
// British irregular one (work: wrought; learn: learnt), so that a
// suggestion prefers "worked"; notSuggested marks the few archaic or
// adjectival forms never to suggest (sunken, slidden).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// notInflections are entries of verb.exc that map a variant spelling of a
// base to that base, not an inflected form.
var notInflections = map[string]bool{
	"abye": true, "pasquil": true, "squilgee": true, "torrify": true, "tranship": true,
}

// presentOfBe are the present forms of "be" in verb.exc.
var presentOfBe = map[string]bool{"am": true, "are": true, "is": true}

// samePast are verbs whose simple past and past participle equal the present.
var samePast = []string{
	"bet", "bid", "broadcast", "burst", "bust", "cast", "cost", "cut", "fit",
	"forecast", "hit", "hurt", "knit", "let", "put", "quit", "read", "rid",
	"set", "shed", "shut", "slit", "split", "spread", "thrust", "upset", "wed",
	"wet", "beat", "input", "output", "offset", "outbid", "sublet", "telecast",
}

// sameParticiple are verbs whose past participle equals the present (came,
// come; ran, run).
var sameParticiple = []string{"come", "run"}

// prefixes are tried on samePast and sameParticiple: a prefixed verb that
// WordNet lists (reset, misread, overcome) has the same forms.
var prefixes = []string{
	"be", "broad", "co", "counter", "fore", "in", "inter", "lip", "mis", "off",
	"out", "over", "pre", "proof", "re", "sub", "tele", "type", "un", "under", "up",
}

// irregularPrefixes are tried on the irregular forms of verb.exc: resold,
// regrown, misspoke, underspent.
var irregularPrefixes = []string{"counter", "fore", "mis", "out", "over", "pre", "re", "un", "under", "up", "with"}

// regularToo maps verbs for which verb.exc has only an archaic or chiefly
// British irregular form to their usual regular past.
var regularToo = map[string]string{
	"abide": "abided", "address": "addressed", "bless": "blessed",
	"burn": "burned", "bypass": "bypassed", "chide": "chided",
	"clothe": "clothed", "curse": "cursed", "dream": "dreamed",
	"dwell": "dwelled", "geld": "gelded", "gild": "gilded", "gird": "girded",
	"heave": "heaved", "kneel": "kneeled", "lean": "leaned", "leap": "leaped",
	"learn": "learned", "lie": "lied", "melt": "melted",
	"overflow": "overflowed", "overpass": "overpassed", "plead": "pleaded",
	"prove": "proved", "shave": "shaved", "smell": "smelled",
	"sneak": "sneaked", "spell": "spelled", "spill": "spilled",
	"spoil": "spoiled", "stave": "staved", "thrive": "thrived",
	"transfix": "transfixed", "unlearn": "unlearned", "work": "worked",
}

// notSuggested are listed forms that are archaic or adjectival where
// another past form of the same verb is the usual one (slid, beheld, shrunk,
// sunk): they are accepted but never suggested. In pastforms.txt their bases
// carry a "~".
var notSuggested = map[string]bool{
	"beholden": true, "shrunken": true, "slidden": true, "sunken": true,
}

// extraVerbs are regular verbs common in event names that WordNet 3.0 (2006)
// does not know as any word: not in index.verb, index.noun, index.adj or
// index.adv. Words WordNet knows only as nouns (checkout, rollback, backup,
// setup, bookmark: the verbs are "check out", "roll back") are left out, as
// are login, logout and signup, on the allowed-actions list. Users name other
// actions with NewRules.
var extraVerbs = []string{
	"deprovision", "dequeue", "enqueue", "offboard", "onboard", "reapply",
	"reauthorize", "reconnect", "redeliver", "reindex", "resync", "unarchive",
	"unassign", "unban", "undelete", "unflag", "unfollow", "unlink", "unmute",
	"unpause", "unpublish", "unshare", "unsubscribe", "unsuspend", "upsert",
	"whitelist",
}

var word = regexp.MustCompile(`^[a-z]+$`)

func main() {
	dir := flag.String("wordnet", "/usr/share/wordnet", "WordNet's dict directory (Debian: wordnet-base)")
	out := flag.String("o", "pastforms.txt", "output file")
	verbsOut := flag.String("verbs", "verbs.txt", "output file for the verbs")
	flag.Parse()

	pairs := map[string][]string{}    // form → bases, from verb.exc
	guards := map[string]bool{}       // forms that are their own base: bed, seed
	presents := map[string][]string{} // present forms → bases: has, is, quizzes
	readLines(filepath.Join(*dir, "verb.exc"), func(f []string) {
		form := f[0]
		if slices.Contains(f[1:], form) {
			if strings.HasSuffix(form, "ed") {
				guards[form] = true
			}
			return
		}
		if !word.MatchString(form) || strings.HasSuffix(form, "ing") || notInflections[form] {
			return
		}
		if strings.HasSuffix(form, "s") && form != "was" || presentOfBe[form] {
			for _, b := range f[1:] {
				if word.MatchString(b) {
					presents[form] = append(presents[form], b)
				}
			}
			return
		}
		for _, b := range f[1:] {
			if word.MatchString(b) && !slices.Contains(pairs[form], b) {
				pairs[form] = append(pairs[form], b)
			}
		}
	})
	verbs := map[string]bool{} // WordNet's one-word verb lemmas
	readLines(filepath.Join(*dir, "index.verb"), func(f []string) {
		if word.MatchString(f[0]) {
			verbs[f[0]] = true
		}
	})

	added := map[string][]string{} // form → bases, from the lists above
	add := func(form, base string) {
		if !slices.Contains(pairs[form], base) && !slices.Contains(added[form], base) {
			added[form] = append(added[form], base)
		}
	}
	for _, v := range slices.Concat(samePast, sameParticiple) {
		add(v, v)
		for _, p := range prefixes {
			if verbs[p+v] && v != "fit" { // outfit, refit: outfitted, refitted
				add(p+v, p+v)
				if slices.Contains(sameParticiple, v) {
					// The simple past, from verb.exc's forms of v: overcame.
					for f, bs := range pairs {
						if slices.Contains(bs, v) && !strings.HasSuffix(f, "ed") {
							add(p+f, p+v)
						}
					}
				}
			}
		}
	}
	for base, past := range regularToo {
		add(past, base)
	}

	// Prefixed irregular forms that verb.exc leaves out (resold, regrown,
	// misspoke): for an irregular form F of a verb B and a prefix P, P+F is
	// the past of P+B when WordNet lists P+B as a verb and P+F as no verb
	// (rebound is a verb of its own). Some P+B are not P and B (relay,
	// reprove), so these forms are accepted but never suggested.
	prefixed := map[string][]string{}
	for f, bs := range pairs {
		for _, base := range bs {
			if strings.HasSuffix(f, "ed") && strings.HasPrefix(f, base[:len(base)-1]) {
				continue // stopped, worked: the prefixed verb has the regular past
			}
			for _, p := range irregularPrefixes {
				pf, pb := p+f, p+base
				if verbs[pb] && !verbs[pf] && pairs[pf] == nil && added[pf] == nil && !slices.Contains(prefixed[pf], pb) {
					prefixed[pf] = append(prefixed[pf], pb)
				}
			}
		}
	}

	var b strings.Builder
	pkg := "wordnet-base"
	if v, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", "wordnet-base").Output(); err == nil {
		pkg += " " + string(v)
	}
	fmt.Fprintf(&b, header, pkg)
	write := func(m map[string][]string) {
		for _, f := range slices.Sorted(maps.Keys(m)) {
			bases := slices.Clone(m[f])
			if notSuggested[f] {
				for i := range bases {
					bases[i] = "~" + bases[i]
				}
			}
			fmt.Fprintf(&b, "%s %s\n", f, strings.Join(bases, " "))
		}
	}
	fmt.Fprintf(&b, "# From verb.exc (%d forms):\n", len(pairs))
	write(pairs)
	fmt.Fprintf(&b, "# Added by gen_pastforms.go, not in verb.exc (%d forms):\n", len(added))
	write(added)
	fmt.Fprintf(&b, "# Prefixed forms, accepted but never suggested (%d forms):\n", len(prefixed))
	for _, f := range slices.Sorted(maps.Keys(prefixed)) {
		fmt.Fprintf(&b, "%s ~%s\n", f, strings.Join(slices.Sorted(slices.Values(prefixed[f])), " ~"))
	}
	fmt.Fprintf(&b, "# Present forms, no past forms (%d forms):\n", len(presents))
	for _, f := range slices.Sorted(maps.Keys(presents)) {
		fmt.Fprintf(&b, "-%s %s\n", f, strings.Join(presents[f], " "))
	}
	for g := range guards {
		if added[g] != nil {
			delete(guards, g) // shed: its own past
		}
	}
	fmt.Fprintf(&b, "# Words ending in \"ed\" that are no past form, from verb.exc (%d):\n", len(guards))
	for _, g := range slices.Sorted(maps.Keys(guards)) {
		fmt.Fprintf(&b, "!%s\n", g)
	}
	if err := os.WriteFile(*out, []byte(b.String()), 0o644); err != nil {
		log.Fatal(err)
	}

	// The verbs, and the extra ones if WordNet knows none of them.
	known := maps.Clone(verbs)
	for _, idx := range []string{"index.noun", "index.adj", "index.adv"} {
		readLines(filepath.Join(*dir, idx), func(f []string) { known[f[0]] = true })
	}
	for _, v := range extraVerbs {
		if known[v] || !word.MatchString(v) {
			log.Fatalf("extra verb %q: WordNet knows it, or it is not one word", v)
		}
	}
	b.Reset()
	fmt.Fprintf(&b, verbsHeader, pkg)
	fmt.Fprintf(&b, "# From index.verb (%d verbs):\n", len(verbs))
	for _, v := range slices.Sorted(maps.Keys(verbs)) {
		fmt.Fprintln(&b, v)
	}
	fmt.Fprintf(&b, "# Added by gen_pastforms.go, not in WordNet (%d verbs):\n", len(extraVerbs))
	for _, v := range slices.Sorted(slices.Values(extraVerbs)) {
		fmt.Fprintln(&b, v)
	}
	if err := os.WriteFile(*verbsOut, []byte(b.String()), 0o644); err != nil {
		log.Fatal(err)
	}
}

func readLines(path string, fn func(fields []string)) {
	f, err := os.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, " ") { // index.verb's licence header
			continue
		}
		if fields := strings.Fields(line); len(fields) >= 2 {
			fn(fields)
		}
	}
	if err := sc.Err(); err != nil {
		log.Fatal(err)
	}
}

const header = `# Code generated by gen_pastforms.go from WordNet 3.0; DO NOT EDIT.
#
# English past tense and past participle forms, one a line: FORM BASE...
# A base marked "~" is not given FORM as a suggestion (sunken: sink→sunk).
# A line "!WORD" is a word ending in "ed" that is not a past form (seed).
# A line "-FORM BASE..." is a present form of BASE (has have), no past form.
# Other words ending in "ed" are accepted as past forms without being listed,
# unless they are a listed base (speed: sped); the listed ones ending in "ed"
# give a verb's spelling (stopped, copied).
#
# Source: WordNet 3.0, verb.exc and index.verb, as packaged by Debian
# (%s); see gen_pastforms.go for the filter and the few added forms.
# WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved.
# Used under the WordNet 3.0 license, in WORDNET-LICENSE beside this file.
#
`

const verbsHeader = `# Code generated by gen_pastforms.go from WordNet 3.0; DO NOT EDIT.
#
# English verbs, one a line: the words that may be given a regular past
# form as a suggestion (visit: visited) when pastforms.txt does not list
# their past. Any other word is given none (payment: not "paymented").
#
# Source: WordNet 3.0, index.verb (one-word lemmas), as packaged by Debian
# (%s), and the few verbs WordNet does not know that
# gen_pastforms.go adds.
# WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved.
# Used under the WordNet 3.0 license, in WORDNET-LICENSE beside this file.
#
`
