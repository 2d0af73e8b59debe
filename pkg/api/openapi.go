package api

import (
	_ "embed"
	"net/http"
	"strconv"
)

// openAPI is the OpenAPI document of every route (source of truth beside
// docs/api.md; a test checks it against the router).
//
//go:embed openapi.json
var openAPI []byte

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(openAPI)))
	w.Write(openAPI)
}
