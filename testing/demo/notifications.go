package demo

import (
	"errors"
	"net/http"
	"sync"
)

// DefaultNotificationLimit is the page size of GET /notifications without a limit.
const DefaultNotificationLimit = 20

// notificationCount is the answer of GET /notifications/count.
type notificationCount struct {
	UserID string `json:"user_id"`
	Unread int    `json:"unread"`
}

// notificationsBody is the answer of GET /notifications.
type notificationsBody struct {
	Notifications []Notification `json:"notifications"`
}

// MarkReadRequest is the body of POST /notifications/read. Empty IDs means all the user's
// notifications.
type MarkReadRequest struct {
	UserID string   `json:"user_id"`
	IDs    []string `json:"ids"`
}

// markReadBody is the answer of POST /notifications/read.
type markReadBody struct {
	Marked int `json:"marked"`
}

// notificationStore keeps the read flags, the only mutable part, beside the shared seed.
type notificationStore struct {
	seed   []Notification
	byUser map[string][]int // indexes into seed, oldest first

	mu   sync.Mutex
	read []bool
}

func newNotificationStore() *notificationStore {
	st := &notificationStore{seed: seedData().notifications, byUser: make(map[string][]int)}
	for i, n := range st.seed {
		st.byUser[n.UserID] = append(st.byUser[n.UserID], i)
	}
	st.reset()
	return st
}

func (st *notificationStore) reset() {
	read := make([]bool, len(st.seed))
	for i, n := range st.seed {
		read[i] = n.Read
	}
	st.mu.Lock()
	st.read = read
	st.mu.Unlock()
}

func (st *notificationStore) unread(user string) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	count := 0
	for _, i := range st.byUser[user] {
		if !st.read[i] {
			count++
		}
	}
	return count
}

func (st *notificationStore) list(user string, limit int) []Notification {
	idx := st.byUser[user]
	out := make([]Notification, 0, min(limit, len(idx)))
	st.mu.Lock()
	defer st.mu.Unlock()
	for j := len(idx) - 1; j >= 0 && len(out) < limit; j-- {
		n := st.seed[idx[j]]
		n.Read = st.read[idx[j]]
		out = append(out, n)
	}
	return out
}

// markRead marks the user's notifications named by ids (all when empty) and reports how many
// changed from unread to read; ids of other users or unknown ids are ignored.
func (st *notificationStore) markRead(user string, ids []string) int {
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	marked := 0
	for _, i := range st.byUser[user] {
		if (len(ids) == 0 || want[st.seed[i].ID]) && !st.read[i] {
			st.read[i] = true
			marked++
		}
	}
	return marked
}

// NewNotifications returns the notifications service: three to seven notifications per user,
// the newest always unread. Read state is kept per Service (until Reset).
//
//	GET  /health
//	GET  /notifications/count?user_id=u1       {"user_id":"u1","unread":n}
//	GET  /notifications?user_id=u1&limit=20    {"notifications":[…]} newest first, max 100
//	POST /notifications/read {user_id, ids}    {"marked":n}, n = notifications newly marked
//
// Reads name the user as user_id, else X-Authenticated-Subject or X-User-ID, else u1; the POST
// takes user_id from the body, else those headers, and is rejected without any. Unknown users
// have no notifications.
func NewNotifications() *Service {
	s := newService("notifications")
	st := newNotificationStore()
	s.resetState = st.reset

	s.handle(RouteNotificationCount, func(w http.ResponseWriter, r *http.Request) {
		user := readUserID(r)
		writeJSON(w, http.StatusOK, notificationCount{UserID: user, Unread: st.unread(user)})
	})
	s.handle(RouteNotifications, func(w http.ResponseWriter, r *http.Request) {
		limit, err := queryLimit(r, DefaultNotificationLimit, MaxPageLimit)
		if err != nil {
			badRequest(w, err)
			return
		}
		writeJSON(w, http.StatusOK, notificationsBody{Notifications: st.list(readUserID(r), limit)})
	})
	s.handle(RouteMarkRead, func(w http.ResponseWriter, r *http.Request) {
		var req MarkReadRequest
		if err := decodeBody(w, r, &req); err != nil {
			badRequest(w, err)
			return
		}
		if req.UserID == "" {
			req.UserID = headerUser(r)
		}
		if req.UserID == "" {
			writeError(w, http.StatusBadRequest, "VALIDATION_FAILED", "user_id: required (in the body or a user header)")
			return
		}
		if len(req.IDs) > maxBatchIDs {
			badRequest(w, errors.New("ids: too many"))
			return
		}
		writeJSON(w, http.StatusOK, markReadBody{Marked: st.markRead(req.UserID, req.IDs)})
	})
	return s
}
