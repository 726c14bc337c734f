package demo

import "net/http"

// paymentsBody is the answer of GET /payments?ids=.
type paymentsBody struct {
	Payments []Payment `json:"payments"`
}

// NewPayments returns the payments service: p1 … p500, pN paying order oN.
//
//	GET /health
//	GET /payments/{id}      404 when unknown
//	GET /payments?ids=a,b   {"payments":[…]} in the order asked, unknown ids left out; without
//	                        ids, all payments in id order
func NewPayments() *Service {
	s := newService("payments")
	d := seedData()
	s.handle(RoutePayment, func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		p, ok := d.payment(id)
		if !ok {
			notFound(w, "payment", id)
			return
		}
		writeJSON(w, http.StatusOK, p)
	})
	s.handle(RoutePayments, func(w http.ResponseWriter, r *http.Request) {
		ids, present, err := queryIDs(r)
		if err != nil {
			badRequest(w, err)
			return
		}
		if !present {
			writeJSON(w, http.StatusOK, paymentsBody{Payments: d.payments})
			return
		}
		out := paymentsBody{Payments: make([]Payment, 0, len(ids))}
		for _, id := range ids {
			if p, ok := d.payment(id); ok {
				out.Payments = append(out.Payments, p)
			}
		}
		writeJSON(w, http.StatusOK, out)
	})
	return s
}
