package topic

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/plexica/eventbus/internal/errs"
)

// ErrInvalidTopic is the sentinel every topic-name rejection wraps:
// errors.Is(err, ErrInvalidTopic) reports whether a name broke the rules.
var ErrInvalidTopic = errors.New("invalid topic name")

// ErrInvalidPluginID is the sentinel every plugin-ID rejection wraps,
// including a topic rejected because of its plugin ID (that error wraps
// ErrInvalidTopic too).
var ErrInvalidPluginID = errors.New("invalid plugin ID")

// errTopicPluginID is the Err of a topic rejected because of its plugin ID.
var errTopicPluginID = errors.Join(ErrInvalidTopic, ErrInvalidPluginID)

const (
	corePrefix   = "core."
	pluginPrefix = "plugin."
	dlqPrefix    = "dlq."

	// maxNameLen is Kafka's limit on topic topic.
	maxNameLen = 249
	// maxOriginalLen is the limit on core and plugin topics: room is left
	// for the "dlq." prefix of their dead-letter topic.
	maxOriginalLen = maxNameLen - len(dlqPrefix)

	identPattern    = "[a-z][a-z0-9_]*"
	pluginIDPattern = "[a-z0-9]+(-[a-z0-9]+)*"

	exampleCore     = "core.user.created"
	examplePlugin   = "plugin.crm.contact.created"
	exampleDLQ      = "dlq.core.user.created"
	examplePluginID = "sample-analytics"

	shapeRule = "a topic must be core.<domain>.<action> (e.g. " + exampleCore +
		"), plugin.<pluginId>.<entity>.<action> (e.g. " + examplePlugin +
		") or dlq.<topic> (e.g. " + exampleDLQ + ")"
)

// Kind says which of the three forms a topic name has. The zero Kind is not a
// valid kind: a parsed Topic always has KindCore, KindPlugin or KindDLQ.
type Kind int

// The topic kinds.
const (
	KindCore   Kind = iota + 1 // core.<domain>.<action>
	KindPlugin                 // plugin.<pluginId>.<entity>.<action>
	KindDLQ                    // dlq.<core or plugin topic>
)

// String returns "core", "plugin" or "dlq" ("Kind(n)" for any other value).
func (k Kind) String() string {
	switch k {
	case KindCore:
		return "core"
	case KindPlugin:
		return "plugin"
	case KindDLQ:
		return "dlq"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Topic is a parsed topic name: its kind and parts. The string fields are
// substrings of Name.
type Topic struct {
	Kind     Kind
	Name     string // the full name as given
	Domain   string // core only: "user" in core.user.created
	PluginID string // plugin only: "crm" in plugin.crm.contact.note.added
	Entity   string // plugin only, may contain dots: "contact.note"
	Action   string // core and plugin: "created", "added"
	Original *Topic // dlq only: the core or plugin topic it holds failures of
}

// String returns the full topic name. For a Topic built by hand with an
// empty Name it joins the parts: Topic{Kind: KindCore, Domain: "user",
// Action: "created"}.String() is "core.user.created". It does not validate.
func (t Topic) String() string {
	if t.Name != "" {
		return t.Name
	}
	switch t.Kind {
	case KindCore:
		return corePrefix + t.Domain + "." + t.Action
	case KindPlugin:
		return pluginPrefix + t.PluginID + "." + t.Entity + "." + t.Action
	case KindDLQ:
		if t.Original == nil {
			return dlqPrefix
		}
		return dlqPrefix + t.Original.String()
	}
	return ""
}

// Error is a rejected topic name or plugin ID. Its message says which rule
// failed and shows a valid name:
//
//	invalid topic name "core.user.create": action "create" must be past tense (or on the allowed-actions list); use "core.user.created"
//	invalid plugin ID "CRM": plugin ID "CRM" must be kebab-case [a-z0-9]+(-[a-z0-9]+)*: it has uppercase letters; use "crm"
type Error struct {
	// Name is the rejected topic name (or plugin ID, for ValidatePluginID).
	Name string
	// Rule is the rule that failed, in words. When no correction could be
	// derived (Example is empty) it ends with an example of the valid form,
	// such as "(e.g. core.user.created)".
	Rule string
	// Example is a valid name derived from Name, such as the name with its
	// action in the past tense, or "" when none could be derived. The
	// message shows it as `use "<Example>"`.
	Example string
	// Err is the sentinel: ErrInvalidTopic, ErrInvalidPluginID, or both
	// (joined) for a topic rejected because of its plugin ID. Test it with
	// errors.Is on the *Error itself.
	Err error
}

// Error returns `invalid topic name "<Name>": <Rule>; use "<Example>"`
// ("invalid plugin ID" for a plugin ID; no "use" part without an Example).
func (e *Error) Error() string {
	var b strings.Builder
	if e.Err == ErrInvalidPluginID {
		b.WriteString(ErrInvalidPluginID.Error())
	} else {
		b.WriteString(ErrInvalidTopic.Error())
	}
	b.WriteByte(' ')
	b.WriteString(strconv.Quote(e.Name))
	b.WriteString(": ")
	b.WriteString(e.Rule)
	if e.Example != "" {
		b.WriteString("; use ")
		b.WriteString(strconv.Quote(e.Example))
	}
	return b.String()
}

// Unwrap returns the sentinel(s) the error wraps, for errors.Is.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return nil
	}
	if j, ok := e.Err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{e.Err}
}

// defaultActions is the default allow-list of actions that are accepted
// although they are not past tenses: the noun-like actions of the core event
// catalog, and the irregular past forms that were listed before every past
// form was accepted (kept, so that AllowedActions does not change).
var defaultActions = []string{
	"login", "logout", "request", "response", "error", "reset",
	"sent", "built", "paid", "read", "won", "lost", "begun", "done",
	"run", "set", "spent", "shut", "split", "heartbeat", "signup",
}

// Rules is a set of topic-name rules: the fixed forms and segment rules,
// past-tense actions, plus an allow-list of actions accepted although they
// are not past tenses (login, request). A
// *Rules is immutable and safe for concurrent use. A nil *Rules behaves like
// DefaultRules().
type Rules struct {
	allowed map[string]struct{}
	sorted  []string
}

var defaultRules = newRules(defaultActions)

func newRules(actions []string) *Rules {
	r := &Rules{allowed: make(map[string]struct{}, len(actions))}
	for _, a := range actions {
		r.allowed[a] = struct{}{}
	}
	r.sorted = slices.Sorted(maps.Keys(r.allowed))
	return r
}

// DefaultRules returns the rules with the default allow-list of actions that
// are not past tenses (and a few that are, listed before every past form was
// accepted): login, logout, request, response, error, reset, sent, built,
// paid, read, won, lost, begun, done, run, set, spent, shut, split, heartbeat
// and signup. The package-level Parse and Validate use it.
func DefaultRules() *Rules { return defaultRules }

// NewRules returns the default rules with extraActions added to the
// allow-list, for example NewRules("sync", "made"). Each extra action must
// itself match [a-z][a-z0-9_]*; otherwise NewRules returns an error that
// wraps eventbus.ErrInvalidConfig.
func NewRules(extraActions ...string) (*Rules, error) {
	for _, a := range extraActions {
		if !isIdent(a) {
			return nil, fmt.Errorf("%w: topic rules: extra action %q must match %s: %s (e.g. \"synced\")", errs.InvalidConfig, a, identPattern, identReason(a))
		}
	}
	return newRules(slices.Concat(defaultActions, extraActions)), nil
}

// AllowedActions returns the allow-list of actions accepted although they are
// not past tenses, sorted. The slice is a copy.
func (r *Rules) AllowedActions() []string {
	return slices.Clone(r.rules().sorted)
}

// Validate reports whether name is a valid topic name under r. A
// rejection is an *Error wrapping ErrInvalidTopic.
func (r *Rules) Validate(name string) error {
	_, err := r.Parse(name)
	return err
}

// Parse parses and validates name under r. A rejection is an *Error
// wrapping ErrInvalidTopic (and ErrInvalidPluginID when the plugin ID is at
// fault), with the failed rule and, when one can be derived, a corrected name.
func (r *Rules) Parse(name string) (Topic, error) {
	r = r.rules()
	t, f := r.parse(name)
	if f != nil {
		return Topic{}, r.newError(name, f)
	}
	return t, nil
}

// Parse parses and validates name under DefaultRules().
func Parse(name string) (Topic, error) { return defaultRules.Parse(name) }

// Validate reports whether name is a valid topic name under
// DefaultRules(). A rejection is an *Error wrapping ErrInvalidTopic.
func Validate(name string) error { return defaultRules.Validate(name) }

// ValidatePluginID reports whether id is a valid plugin ID: kebab-case,
// [a-z0-9]+(-[a-z0-9]+)*, such as "crm", "sample-analytics" or
// "salesforce-sync". A rejection is an *Error wrapping ErrInvalidPluginID.
func ValidatePluginID(id string) error {
	if isPluginID(id) {
		return nil
	}
	e := &Error{Name: id, Rule: pluginIDRule(id), Err: ErrInvalidPluginID}
	if fix := fixPluginID(id); fix != id && isPluginID(fix) {
		e.Example = fix
	} else {
		e.Rule += " (e.g. " + examplePluginID + ")"
	}
	return e
}

// rules returns r, or the default rules for a nil r.
func (r *Rules) rules() *Rules {
	if r == nil {
		return defaultRules
	}
	return r
}

// allows reports whether action (already a valid segment) counts as past
// tense: its last word (after the last '_') is a past tense or past
// participle (see isPast: an irregular form such as held, written or read,
// or a word ending in "ed" but speed) or is on the allow-list, or the whole
// action is on it. So
// member_added, payment_held, password_reset and email_sent pass, and
// created_v2 does not. It costs a map lookup or three.
func (r *Rules) allows(action string) bool {
	last := action[strings.LastIndexByte(action, '_')+1:]
	if isPast(last) {
		return true
	}
	_, whole := r.allowed[action]
	_, word := r.allowed[last]
	return whole || word
}

// failure is why parse rejected a name. The rule text is only built on the
// error path; the hot path allocates nothing.
type failure struct {
	rule string // the rule that failed
	form string // an example of the expected form; "" when rule shows examples
	err  error  // the sentinel(s)
}

func fail(form, rule string) *failure {
	return &failure{rule: rule, form: form, err: ErrInvalidTopic}
}

// newError turns a failure into an *Error, with a corrected name if one can
// be derived and otherwise an example of the expected form.
func (r *Rules) newError(name string, f *failure) *Error {
	e := &Error{Name: name, Rule: f.rule, Err: f.err}
	if fix := r.suggest(name); fix != "" {
		e.Example = fix
	} else if f.form != "" {
		e.Rule += " (e.g. " + f.form + ")"
	}
	return e
}

// parse validates name and splits it into its parts.
func (r *Rules) parse(name string) (Topic, *failure) {
	switch {
	case strings.HasPrefix(name, corePrefix):
		return r.parseCore(name)
	case strings.HasPrefix(name, pluginPrefix):
		return r.parsePlugin(name)
	case strings.HasPrefix(name, dlqPrefix):
		return r.parseDLQ(name)
	case strings.HasPrefix(name, "__"):
		return Topic{}, fail("", `names starting with "__" are reserved for Kafka's internal topics; `+shapeRule)
	}
	return Topic{}, fail("", shapeRule)
}

func (r *Rules) parseCore(name string) (Topic, *failure) {
	if f := checkLayout(name, exampleCore); f != nil {
		return Topic{}, f
	}
	rest := name[len(corePrefix):]
	dot := strings.IndexByte(rest, '.')
	if dot < 0 || strings.IndexByte(rest[dot+1:], '.') >= 0 {
		return Topic{}, fail(exampleCore, "a core topic must be core.<domain>.<action>")
	}
	domain, action := rest[:dot], rest[dot+1:]
	if !isIdent(domain) {
		return Topic{}, identFailure("domain", domain, exampleCore)
	}
	if f := r.checkAction(action, exampleCore); f != nil {
		return Topic{}, f
	}
	return Topic{Kind: KindCore, Name: name, Domain: domain, Action: action}, nil
}

func (r *Rules) parsePlugin(name string) (Topic, *failure) {
	if f := checkLayout(name, examplePlugin); f != nil {
		return Topic{}, f
	}
	rest := name[len(pluginPrefix):]
	first, last := strings.IndexByte(rest, '.'), strings.LastIndexByte(rest, '.')
	if first < 0 || first == last {
		return Topic{}, fail(examplePlugin, "a plugin topic must be plugin.<pluginId>.<entity>.<action>")
	}
	id, entity, action := rest[:first], rest[first+1:last], rest[last+1:]
	if !isPluginID(id) {
		return Topic{}, &failure{rule: pluginIDRule(id), form: examplePlugin, err: errTopicPluginID}
	}
	what := "entity"
	if strings.IndexByte(entity, '.') >= 0 {
		what = "entity part"
	}
	for rest := entity; ; {
		part, tail, more := strings.Cut(rest, ".")
		if !isIdent(part) {
			return Topic{}, identFailure(what, part, examplePlugin)
		}
		if !more {
			break
		}
		rest = tail
	}
	if f := r.checkAction(action, examplePlugin); f != nil {
		return Topic{}, f
	}
	return Topic{Kind: KindPlugin, Name: name, PluginID: id, Entity: entity, Action: action}, nil
}

func (r *Rules) parseDLQ(name string) (Topic, *failure) {
	if len(name) > maxNameLen {
		return Topic{}, fail(exampleDLQ, fmt.Sprintf("a topic must be at most %d characters (Kafka's limit), not %d", maxNameLen, len(name)))
	}
	rest := name[len(dlqPrefix):]
	var (
		orig Topic
		f    *failure
	)
	switch {
	case strings.HasPrefix(rest, corePrefix):
		orig, f = r.parseCore(rest)
	case strings.HasPrefix(rest, pluginPrefix):
		orig, f = r.parsePlugin(rest)
	case strings.HasPrefix(rest, dlqPrefix):
		return Topic{}, fail(exampleDLQ, "a dlq topic holds the failures of a core or plugin topic, not of another dlq topic")
	case strings.HasPrefix(rest, retryPrefix):
		// dlq.retry.<group>.<topic>: where the dead letter queue sends a
		// core group's retries of topic (internal/dlq/topics.go).
		group, inner, ok := strings.Cut(rest[len(retryPrefix):], ".")
		if !ok || !isRetryGroupSegment(group) {
			return Topic{}, fail(exampleDLQ, "a dlq retry topic must be dlq.retry.<group segment>.<core or plugin topic>")
		}
		switch {
		case strings.HasPrefix(inner, corePrefix):
			orig, f = r.parseCore(inner)
		case strings.HasPrefix(inner, pluginPrefix):
			orig, f = r.parsePlugin(inner)
		default:
			return Topic{}, fail(exampleDLQ, "a dlq retry topic must be dlq.retry.<group segment>.<core or plugin topic>")
		}
	default:
		return Topic{}, fail(exampleDLQ, "a dlq topic must be dlq.<core or plugin topic>")
	}
	if f != nil {
		if f.form != "" {
			f.form = dlqPrefix + f.form
		}
		return Topic{}, f
	}
	return Topic{Kind: KindDLQ, Name: name, Original: &orig}, nil
}

// retryPrefix starts, after "dlq.", the retry topics of core groups.
const retryPrefix = "retry."

// isRetryGroupSegment reports whether seg can name a group in a retry
// topic: [a-z0-9_]+.
func isRetryGroupSegment(seg string) bool {
	if seg == "" {
		return false
	}
	for _, c := range seg {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// checkLayout checks the length of a core or plugin topic and that it has no
// empty segment. name starts with its prefix, which ends in a dot.
func checkLayout(name, form string) *failure {
	if len(name) > maxOriginalLen {
		return fail(form, fmt.Sprintf("a core or plugin topic must be at most %d characters, leaving room for its %q prefix within Kafka's limit of %d, not %d",
			maxOriginalLen, dlqPrefix, maxNameLen, len(name)))
	}
	if name[len(name)-1] == '.' || strings.Contains(name, "..") {
		return fail(form, "segments must not be empty: no leading, trailing or doubled dots")
	}
	return nil
}

// checkAction checks that action is a valid segment in the past tense.
func (r *Rules) checkAction(action, form string) *failure {
	if !isIdent(action) {
		return identFailure("action", action, form)
	}
	if r.allows(action) {
		return nil
	}
	return fail(form, fmt.Sprintf("action %q must be past tense (or on the allowed-actions list)", action))
}

func identFailure(what, s, form string) *failure {
	return fail(form, fmt.Sprintf("%s %q must match %s: %s", what, s, identPattern, identReason(s)))
}

func pluginIDRule(id string) string {
	return fmt.Sprintf("plugin ID %q must be kebab-case %s: %s", id, pluginIDPattern, pluginIDReason(id))
}

// isIdent reports whether s matches [a-z][a-z0-9_]*.
func isIdent(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// identReason says why s does not match [a-z][a-z0-9_]*.
func identReason(s string) string {
	if s == "" {
		return "it is empty"
	}
	for i, c := range s {
		switch {
		case 'a' <= c && c <= 'z':
		case 'A' <= c && c <= 'Z':
			return "it has uppercase letters"
		case '0' <= c && c <= '9' || c == '_':
			if i == 0 {
				return "it must start with a letter"
			}
		case c == '-':
			return `it contains '-' (use '_')`
		default:
			return fmt.Sprintf("it contains %q", c)
		}
	}
	return "it does not match"
}

// isPluginID reports whether s matches [a-z0-9]+(-[a-z0-9]+)*.
func isPluginID(s string) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	hyphen := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z' || '0' <= c && c <= '9':
			hyphen = false
		case c == '-' && !hyphen:
			hyphen = true
		default:
			return false
		}
	}
	return true
}

// pluginIDReason says why s does not match [a-z0-9]+(-[a-z0-9]+)*.
func pluginIDReason(s string) string {
	if s == "" {
		return "it is empty"
	}
	for _, c := range s {
		switch {
		case 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-':
		case 'A' <= c && c <= 'Z':
			return "it has uppercase letters"
		case c == '_' || c == '.' || c == ' ':
			return fmt.Sprintf("it contains %q (use '-')", c)
		default:
			return fmt.Sprintf("it contains %q", c)
		}
	}
	switch {
	case s[0] == '-':
		return "it starts with '-'"
	case s[len(s)-1] == '-':
		return "it ends with '-'"
	case strings.Contains(s, "--"):
		return "it has '-' twice in a row"
	}
	return "it does not match"
}

// fixPluginID guesses the kebab-case plugin ID meant by s.
func fixPluginID(s string) string {
	s = strings.Map(func(c rune) rune {
		if c == '_' || c == '.' || c == ' ' {
			return '-'
		}
		return c
	}, strings.ToLower(s))
	for strings.Contains(s, "--") {
		s = strings.ReplaceAll(s, "--", "-")
	}
	return strings.Trim(s, "-")
}

// suggest guesses the valid name meant by a rejected name: lowercased, empty
// segments dropped, nested dlq prefixes merged, '-' in segments made '_' (and
// '_' in the plugin ID made '-'), and a non-past-tense action put in the past
// tense. It returns "" when the guess is not a valid name either.
func (r *Rules) suggest(name string) string {
	if len(name) > 4*maxNameLen {
		return "" // not worth the work: no sensible fix is that far off
	}
	s := strings.ToLower(name)
	prefix := ""
	for strings.HasPrefix(s, dlqPrefix) {
		s, prefix = s[len(dlqPrefix):], dlqPrefix
	}
	parts := slices.DeleteFunc(strings.Split(s, "."), func(p string) bool { return p == "" })
	fixIdent := func(p string) string { return strings.ReplaceAll(p, "-", "_") }
	switch {
	case len(parts) == 3 && parts[0] == "core":
		parts[1] = fixIdent(parts[1])
	case len(parts) >= 4 && parts[0] == "plugin":
		parts[1] = fixPluginID(parts[1])
		for i := 2; i < len(parts)-1; i++ {
			parts[i] = fixIdent(parts[i])
		}
	default:
		return ""
	}
	last := len(parts) - 1
	parts[last] = r.fixAction(fixIdent(parts[last]))
	fix := prefix + strings.Join(parts, ".")
	if fix == name {
		return ""
	}
	if _, f := r.parse(fix); f != nil {
		return ""
	}
	return fix
}

// fixAction returns the past tense of action if it has one that r allows,
// and action itself otherwise.
func (r *Rules) fixAction(action string) string {
	if !isIdent(action) || r.allows(action) {
		return action
	}
	if p := PastTense(action); p != "" && r.allows(p) {
		return p
	}
	return action
}

// PastTense returns the past form of action for the suggestion of a rejected
// topic name, or "" when it has none to give. It works on the last
// "_"-separated word (member_add becomes member_added):
//
//   - a past tense or past participle is returned unchanged: a word ending
//     in "ed", or one of the irregular forms (held, written, read, set);
//   - a verb on the list gets its past from the list: hold→held,
//     buy→bought, write→written, get→gotten, stop→stopped, copy→copied,
//     panic→panicked, submit→submitted, cancel→cancelled;
//   - a present form on the list gets its verb's past: has→had,
//     quizzes→quizzed;
//   - a verb on the list behind a prefix gets the prefixed past if it is
//     regular (resubmit→resubmitted, unpin→unpinned) and none otherwise
//     (resend: the list has no "resent");
//   - any other verb gets the regular past: "d" after an "e"
//     (create→created), "ied" for a "y" after a consonant (notify→notified),
//     the last consonant doubled in a one-vowel word ending in
//     consonant-vowel-consonant other than c, w, x or y (blog→blogged), "ed"
//     otherwise (sync→synced, visit→visited) — but nothing for a word of one
//     letter, a word with a digit (v2), an -ing form (creating), a word
//     ending in a single "s" (creates, ships; not process or focus), or
//     when the result is a present verb (b: not "bed");
//   - a word that is no verb gets nothing: payment, checkout, customer
//     (not "paymented", "checkouted"). The verbs are WordNet's one-word
//     verb lemmas (about 8,400: visit, open, invoice, refund), the bases of
//     the list, and a few that WordNet 3.0 does not know (upsert, onboard,
//     unsubscribe, enqueue, resync, unban: see verbs.txt). Words WordNet
//     knows only as nouns, whose verb is two words (checkout: check out;
//     rollback, backup, setup), get no suggestion; put them on the
//     allowed-actions list with NewRules to accept them as they are.
//
// The list is derived from WordNet 3.0's verb exception list (about 1,500
// forms of 1,300 verbs; see pastforms.txt and WORDNET-LICENSE), so every
// suggestion is a real word or the regular form of a verb WordNet does not
// know as irregular. Verbs with two pasts get the regular one (work→worked,
// not wrought) or the participle (write→written, do→done).
func PastTense(action string) string {
	head, word := "", action
	if i := strings.LastIndexByte(action, '_'); i >= 0 {
		head, word = action[:i+1], action[i+1:]
	}
	if word == "" {
		return ""
	}
	if isPast(word) {
		return action
	}
	if p, ok := pastOf[word]; ok {
		return head + p
	}
	if base, ok := presentOf[word]; ok { // has: had
		if p, ok := pastOf[base]; ok {
			return head + p
		}
		return ""
	}
	if !isVerb(word) {
		return "" // payment, checkout: no verb, and "paymented" no word
	}
	if p := regularPast(word); p != "" && isPast(p) {
		return head + p // not "bed" for "b": that is a present verb
	}
	return ""
}

func isLetter(c byte) bool    { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isVowel(c byte) bool     { return strings.IndexByte("aeiouAEIOU", c) >= 0 }
func isConsonant(c byte) bool { return isLetter(c) && !isVowel(c) }

// vowels counts the vowels of s, a "y" after a consonant among them (the
// "y" of hyphen and syphon, not of yip or play).
func vowels(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if isVowel(s[i]) || s[i] == 'y' && i > 0 && isConsonant(s[i-1]) {
			n++
		}
	}
	return n
}
