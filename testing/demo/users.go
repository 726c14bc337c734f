package demo

import "net/http"

// usersBody is the answer of GET /users.
type usersBody struct {
	Users []User `json:"users"`
}

// NewUsers returns the users service: u1 … u100.
//
//	GET /health
//	GET /users/current   the user named by X-Authenticated-Subject or X-User-ID (default u1)
//	GET /users/{id}      404 when unknown
//	GET /users?ids=a,b   {"users":[…]} in the order asked, unknown ids left out (for dataloaders);
//	                     without ids, all users in id order
func NewUsers() *Service {
	s := newService("users")
	d := seedData()
	s.handle(RouteCurrentUser, func(w http.ResponseWriter, r *http.Request) {
		id := headerUser(r)
		if id == "" {
			id = DefaultUserID
		}
		serveUser(w, d, id)
	})
	s.handle(RouteUser, func(w http.ResponseWriter, r *http.Request) {
		serveUser(w, d, r.PathValue("id"))
	})
	s.handle(RouteUsers, func(w http.ResponseWriter, r *http.Request) {
		ids, present, err := queryIDs(r)
		if err != nil {
			badRequest(w, err)
			return
		}
		if !present {
			writeJSON(w, http.StatusOK, usersBody{Users: d.users})
			return
		}
		out := usersBody{Users: make([]User, 0, len(ids))}
		for _, id := range ids {
			if u, ok := d.user(id); ok {
				out.Users = append(out.Users, u)
			}
		}
		writeJSON(w, http.StatusOK, out)
	})
	return s
}

// serveUser is shared with the monolith so that its legacy answer is byte-identical.
func serveUser(w http.ResponseWriter, d *dataset, id string) {
	u, ok := d.user(id)
	if !ok {
		notFound(w, "user", id)
		return
	}
	writeJSON(w, http.StatusOK, u)
}
