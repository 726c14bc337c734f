package bff_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/portico-gw/portico/bff"
)

// TestOpenAPIDocumentIsValidAndDescribesRealAnswers validates each profile's document with
// kin-openapi (OpenAPI 3.1, JSON Schema 2020-12), then checks real answers of every route, and a
// real error, against the schemas it declares.
func TestOpenAPIDocumentIsValidAndDescribesRealAnswers(t *testing.T) {
	e := newEnv(t, envOptions{})
	requests := map[string][]struct {
		method, path, body string
		status             int
	}{
		"web": {
			{"GET", "/web/dashboard", "", 200},
			{"GET", "/web/orders/o3", "", 200},
			{"GET", "/web/orders/o999999", "", 404},
			{"GET", "/web/orders?first=2", "", 200},
			{"GET", "/web/orders?first=x", "", 400},
			{"POST", "/web/orders", `{"input": {"items": [{"sku": "A", "quantity": 1, "unitPriceCents": 5}]}}`, 200},
		},
		"mobile": {
			{"GET", "/mobile/home", "", 200},
			{"GET", "/mobile/orders/o3", "", 200},
		},
	}
	for _, profile := range []string{"web", "mobile"} {
		t.Run(profile, func(t *testing.T) {
			a := e.do(t, http.MethodGet, "/"+profile+"/openapi.json", nil)
			if a.status != 200 {
				t.Fatalf("openapi.json: %d", a.status)
			}
			doc, err := openapi3.NewLoader().LoadFromData(a.body)
			if err != nil {
				t.Fatalf("loading: %v", err)
			}
			if !doc.IsOpenAPI31OrLater() {
				t.Fatalf("version %q, want 3.1", doc.OpenAPI)
			}
			if err := doc.Validate(context.Background()); err != nil {
				t.Fatalf("invalid document: %v", err)
			}
			for _, rq := range requests[profile] {
				t.Run(rq.method+" "+rq.path, func(t *testing.T) {
					op := doc.Paths.Find(strings.SplitN(rq.path, "?", 2)[0])
					if op == nil {
						// Templated paths: find the item whose template matches.
						for tmpl, item := range doc.Paths.Map() {
							if matchTemplate(tmpl, strings.SplitN(rq.path, "?", 2)[0]) {
								op = item
							}
						}
					}
					if op == nil || op.GetOperation(rq.method) == nil {
						t.Fatalf("no operation documented for %s %s", rq.method, rq.path)
					}
					var body []byte
					if rq.body != "" {
						body = []byte(rq.body)
					}
					ans := e.do(t, rq.method, rq.path, body)
					if ans.status != rq.status {
						t.Fatalf("status %d, want %d: %s", ans.status, rq.status, ans.body)
					}
					resp := op.GetOperation(rq.method).Responses.Status(rq.status)
					if resp == nil {
						t.Fatalf("status %d is not documented", rq.status)
					}
					schema := resp.Value.Content.Get("application/json").Schema.Value
					var v any
					if err := json.Unmarshal(ans.body, &v); err != nil {
						t.Fatal(err)
					}
					if err := schema.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
						t.Errorf("answer does not match its schema: %v\n%s", err, ans.body)
					}
				})
			}
		})
	}
	t.Run("a partial answer and a wrong one", func(t *testing.T) {
		doc, err := openapi3.NewLoader().LoadFromData(e.web.OpenAPI())
		if err != nil {
			t.Fatal(err)
		}
		schema := doc.Paths.Find("/web/dashboard").Get.Responses.Status(200).Value.Content.Get("application/json").Schema.Value
		e.svc["notifications"].Behavior.SetDown(true)
		defer e.svc["notifications"].Behavior.SetDown(false)
		a := e.do(t, http.MethodGet, "/web/dashboard", nil)
		var v map[string]any
		if err := json.Unmarshal(a.body, &v); err != nil {
			t.Fatal(err)
		}
		if err := schema.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
			t.Errorf("partial answer (null unreadNotifications) does not match: %v\n%s", err, a.body)
		}
		// The validator must bite: a wrong type and an undeclared key both fail.
		v["dashboard"].(map[string]any)["me"].(map[string]any)["id"] = 5.0
		if schema.VisitJSON(v, openapi3.EnableJSONSchema2020()) == nil {
			t.Error("a number where the schema says string passed validation")
		}
		v["dashboard"].(map[string]any)["me"].(map[string]any)["id"] = "u1"
		v["dashboard"].(map[string]any)["extra"] = true
		if schema.VisitJSON(v, openapi3.EnableJSONSchema2020()) == nil {
			t.Error("an undeclared key passed validation")
		}
	})
	t.Run("parameters are typed", func(t *testing.T) {
		doc, err := openapi3.NewLoader().LoadFromData(e.web.OpenAPI())
		if err != nil {
			t.Fatal(err)
		}
		first := doc.Paths.Find("/web/orders").Get.Parameters.GetByInAndName("query", "first")
		if first == nil || !first.Schema.Value.Type.Includes("integer") || first.Required {
			t.Errorf("first = %+v, want an optional integer query parameter", first)
		}
		id := doc.Paths.Find("/web/orders/{id}").Get.Parameters.GetByInAndName("path", "id")
		if id == nil || !id.Schema.Value.Type.Is("string") || !id.Required {
			t.Errorf("id = %+v, want a required string path parameter", id)
		}
		body := doc.Paths.Find("/web/orders").Post.RequestBody
		if body == nil || body.Value.Content.Get("application/json").Schema.Value.Properties["input"] == nil {
			t.Errorf("POST /web/orders has no request body with input")
		}
		me := doc.Paths.Find("/web/dashboard").Get.Responses.Status(200).Value.Content.Get("application/json").
			Schema.Value.Properties["dashboard"].Value.Properties["me"].Value
		if !me.Type.Includes("null") || !me.Type.Includes("object") {
			t.Errorf("dashboard.me has type %v, want object or null as the schema says", me.Type)
		}
	})
}

func matchTemplate(tmpl, path string) bool {
	ts, ps := strings.Split(tmpl, "/"), strings.Split(path, "/")
	if len(ts) != len(ps) {
		return false
	}
	for i := range ts {
		if !strings.HasPrefix(ts[i], "{") && ts[i] != ps[i] {
			return false
		}
	}
	return true
}

// TestOpenAPIOperationIDsAreUniqueAcrossRoutesOfOneOperation: three GET routes of one operation
// (a canonical path and two aliases) get distinct operationIds, in config order, so the document
// stays valid and the ids stay put between builds.
func TestOpenAPIOperationIDsAreUniqueAcrossRoutesOfOneOperation(t *testing.T) {
	cfg := webConfig()
	cfg.REST = []bff.RESTConfig{
		{Method: "GET", Path: "/orders/{id}", Operation: "OrderDetail", Result: "order"},
		{Method: "GET", Path: "/o/{id}", Operation: "OrderDetail", Result: "order"},
		{Method: "GET", Path: "/order/{id}", Operation: "OrderDetail", Result: "order"},
	}
	e := newEnv(t, envOptions{web: &cfg})
	doc, err := openapi3.NewLoader().LoadFromData(e.do(t, http.MethodGet, "/web/openapi.json", nil).body)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Errorf("invalid OpenAPI document: %v", err)
	}
	for path, want := range map[string]string{"/web/orders/{id}": "OrderDetail", "/web/o/{id}": "OrderDetailGet", "/web/order/{id}": "OrderDetailGet2"} {
		if item := doc.Paths.Find(path); item == nil || item.Get == nil || item.Get.OperationID != want {
			t.Errorf("GET %s: operationId not %q", path, want)
		}
	}
}
