package dlqhttp

import "github.com/plexica/eventbus/internal/httpjson"

// The names this package's internal tests use for httpjson's.
type errorBody = httpjson.ErrorBody

var badRequest = httpjson.BadRequest
