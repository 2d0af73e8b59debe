package api

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/google/go-cmp/cmp"
)

// openAPIDoc is the part of the OpenAPI document the tests look at.
type openAPIDoc struct {
	OpenAPI    string                          `json:"openapi"`
	Info       map[string]any                  `json:"info"`
	Paths      map[string]map[string]openAPIOp `json:"paths"`
	Components struct {
		Schemas map[string]openAPISchema `json:"schemas"`
	} `json:"components"`
}

type openAPIOp struct {
	OperationID string `json:"operationId"`
	RequestBody *struct {
		Content map[string]struct {
			Schema openAPISchema `json:"schema"`
		} `json:"content"`
	} `json:"requestBody"`
	Responses map[string]struct {
		Ref     string `json:"$ref"`
		Content map[string]struct {
			Schema openAPISchema `json:"schema"`
		} `json:"content"`
	} `json:"responses"`
}

type openAPISchema struct {
	Ref        string                   `json:"$ref"`
	Type       string                   `json:"type"`
	Items      *openAPISchema           `json:"items"`
	Properties map[string]openAPISchema `json:"properties"`
	Required   []string                 `json:"required"`
}

func loadOpenAPI(t *testing.T) *openAPIDoc {
	t.Helper()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(openAPI, &raw); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	for _, k := range []string{"openapi", "info", "paths", "components"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("openapi.json has no %q", k)
		}
	}
	var doc openAPIDoc
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") || doc.Info["title"] == nil || doc.Info["version"] == nil {
		t.Errorf("openapi %q, info %v", doc.OpenAPI, doc.Info)
	}
	return &doc
}

// TestOpenAPIRoutes checks that the document and the router have the same
// routes with the same methods.
func TestOpenAPIRoutes(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	e := newEnv(t, envOptions{})
	var routes []string
	err := chi.Walk(e.srv.Config.Handler.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routes = append(routes, method+" "+route)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	slices.Sort(routes)
	slices.Sort(documented)
	if diff := cmp.Diff(routes, documented); diff != "" {
		t.Errorf("routes (-router +openapi.json):\n%s", diff)
	}
}

// TestOpenAPISchemas checks that every $ref resolves and that request and
// response schemas name the same fields as the Go types.
func TestOpenAPISchemas(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	var all map[string]any
	json.Unmarshal(openAPI, &all)
	walkRefs(all, func(ref string) {
		parts := strings.Split(strings.TrimPrefix(ref, "#/"), "/")
		var node any = all
		for _, p := range parts {
			m, ok := node.(map[string]any)
			if !ok || m[p] == nil {
				t.Errorf("$ref %s does not resolve", ref)
				return
			}
			node = m[p]
		}
	})

	requests := map[string]any{
		"getSalt": emailRequest{}, "register": registerRequest{}, "verify": tokenRequest{}, "resend": emailRequest{},
		"login": loginRequest{}, "requestReset": emailLanguageRequest{}, "resetInfo": tokenRequest{},
		"completeReset": completeResetRequest{}, "deleteAccount": loginKeyRequest{}, "setLanguage": languageRequest{},
		"changePassword": passwordRequest{}, "changeEmail": emailChangeRequest{},
		"createPairingToken": createPairingTokenRequest{}, "pairDevice": pairRequest{}, "addDevice": deviceRequest{},
	}
	responses := map[string]any{
		"getSalt": saltResponse{}, "register": statusResponse{}, "verify": verifyResponse{}, "resend": statusResponse{},
		"login": loginResponse{}, "logoutAll": logoutAllResponse{}, "requestReset": statusResponse{},
		"resetInfo": resetInfoResponse{}, "completeReset": completeResetResponse{}, "me": userJSON{},
		"keys": keysResponse{}, "setLanguage": userJSON{}, "changePassword": statusResponse{}, "changeEmail": statusResponse{},
		"createPairingToken": pairingTokenJSON{}, "listPairingTokens": pairingTokenJSON{}, "pairDevice": pairResponse{},
		"addDevice": pairResponse{}, "listDevices": deviceJSON{}, "getDevice": deviceJSON{}, "listDeviceSlots": slotJSON{},
	}
	// resolve follows a $ref, and for a list the $ref of its items.
	resolve := func(s openAPISchema) openAPISchema {
		if s.Type == "array" && s.Items != nil {
			s = *s.Items
		}
		if name, ok := strings.CutPrefix(s.Ref, "#/components/schemas/"); ok {
			return doc.Components.Schemas[name]
		}
		return s
	}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			name := method + " " + path + " (" + op.OperationID + ")"
			if req, ok := requests[op.OperationID]; ok {
				if op.RequestBody == nil {
					t.Errorf("%s: no request body", name)
				} else {
					compareFields(t, name+" request", resolve(op.RequestBody.Content["application/json"].Schema), req)
				}
				delete(requests, op.OperationID)
			} else if op.RequestBody != nil {
				t.Errorf("%s: documents a body the handler does not take", name)
			}
			for status, resp := range op.Responses {
				if status[0] != '2' || resolve(resp.Content["application/json"].Schema).Properties == nil {
					continue
				}
				want, ok := responses[op.OperationID]
				if !ok {
					t.Errorf("%s: no Go type known for its JSON answer", name)
					continue
				}
				compareFields(t, name+" response", resolve(resp.Content["application/json"].Schema), want)
				delete(responses, op.OperationID)
			}
		}
	}
	for id := range requests {
		t.Errorf("operation %s is not documented with a request body", id)
	}
	for id := range responses {
		t.Errorf("operation %s is not documented with a JSON answer", id)
	}
	// Schemas that no operation's body names.
	compareFields(t, "TunnelHello", doc.Components.Schemas["TunnelHello"], tunnelHello{})
	compareFields(t, "KeySlotUpload", doc.Components.Schemas["KeySlotUpload"], slotRequest{})
}

// TestOpenAPIErrorCodes checks that the Error schema lists exactly the
// codes the API answers with.
func TestOpenAPIErrorCodes(t *testing.T) {
	t.Parallel()
	var doc struct {
		Components struct {
			Schemas struct {
				Error struct {
					Properties struct {
						Error struct {
							Properties struct {
								Code struct {
									Enum []string `json:"enum"`
								} `json:"code"`
							} `json:"properties"`
						} `json:"error"`
					} `json:"properties"`
				} `json:"Error"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	documented := doc.Components.Schemas.Error.Properties.Error.Properties.Code.Enum
	var codes []string
	for c := range statusOf {
		codes = append(codes, string(c))
	}
	slices.Sort(codes)
	slices.Sort(documented)
	if diff := cmp.Diff(codes, documented); diff != "" {
		t.Errorf("error codes (-statusOf +openapi.json):\n%s", diff)
	}
}

// compareFields checks that schema has exactly the JSON fields of v's type.
func compareFields(t *testing.T, name string, schema openAPISchema, v any) {
	t.Helper()
	var props []string
	for p := range schema.Properties {
		props = append(props, p)
	}
	fields := jsonFields(reflect.TypeOf(v))
	slices.Sort(props)
	slices.Sort(fields)
	if diff := cmp.Diff(fields, props); diff != "" {
		t.Errorf("%s: fields (-Go +openapi.json):\n%s", name, diff)
	}
}

// jsonFields lists the JSON names of a struct's fields, embedded ones
// flattened.
func jsonFields(typ reflect.Type) []string {
	var out []string
	for f := range typ.Fields() {
		if f.Anonymous {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		out = append(out, name)
	}
	return out
}

func walkRefs(node any, f func(string)) {
	switch n := node.(type) {
	case map[string]any:
		for k, v := range n {
			if s, ok := v.(string); ok && k == "$ref" {
				f(s)
			}
			walkRefs(v, f)
		}
	case []any:
		for _, v := range n {
			walkRefs(v, f)
		}
	}
}

func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	r := e.do("GET", "/api/v1/openapi.json", nil).want(t, 200)
	if string(r.body) != string(openAPI) || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Error("served document differs from the embedded one")
	}
}
