package demo

import (
	"slices"
	"sync"
	"testing"
)

func seedNotificationsOf(user string) []Notification {
	var out []Notification
	for _, n := range SeedNotifications() {
		if n.UserID == user {
			out = append(out, n)
		}
	}
	slices.Reverse(out)
	return out
}

func unreadOf(ns []Notification) (ids []string) {
	for _, n := range ns {
		if !n.Read {
			ids = append(ids, n.ID)
		}
	}
	return ids
}

func TestNotificationsRead(t *testing.T) {
	svc := NewNotifications()
	for _, user := range []string{"u1", "u2", "u50", "u100"} {
		t.Run(user, func(t *testing.T) {
			seed := seedNotificationsOf(user)
			if len(seed) < 3 || seed[0].Read {
				t.Fatalf("seed for %s: %+v, want at least 3 with the newest unread", user, seed)
			}
			c := decode[notificationCount](t, call(t, svc, "GET", "/notifications/count?user_id="+user, ""), 200)
			if c.UserID != user || c.Unread != len(unreadOf(seed)) {
				t.Errorf("count = %+v, want %d unread", c, len(unreadOf(seed)))
			}
			list := decode[notificationsBody](t, call(t, svc, "GET", "/notifications?user_id="+user, ""), 200)
			if !slices.Equal(ids(list.Notifications, notifID), ids(seed, notifID)) {
				t.Errorf("list = %v, want %v newest first", ids(list.Notifications, notifID), ids(seed, notifID))
			}
			limited := decode[notificationsBody](t, call(t, svc, "GET", "/notifications?limit=2", "", "X-User-ID", user), 200)
			if !slices.Equal(ids(limited.Notifications, notifID), ids(seed[:2], notifID)) {
				t.Errorf("limit 2 = %v", ids(limited.Notifications, notifID))
			}
		})
	}
	t.Run("user defaults to u1", func(t *testing.T) {
		c := decode[notificationCount](t, call(t, svc, "GET", "/notifications/count", ""), 200)
		if c.UserID != "u1" {
			t.Errorf("count = %+v", c)
		}
	})
	t.Run("unknown user has none", func(t *testing.T) {
		c := decode[notificationCount](t, call(t, svc, "GET", "/notifications/count?user_id=u999", ""), 200)
		list := decode[notificationsBody](t, call(t, svc, "GET", "/notifications?user_id=u999", ""), 200)
		if c.Unread != 0 || list.Notifications == nil || len(list.Notifications) != 0 {
			t.Errorf("count %+v, list %+v", c, list)
		}
	})
	t.Run("bad limit", func(t *testing.T) {
		wantError(t, call(t, svc, "GET", "/notifications?limit=x", ""), 400, "BAD_REQUEST", "limit")
	})
}

func TestMarkNotificationsRead(t *testing.T) {
	svc := NewNotifications()
	unread := unreadOf(seedNotificationsOf("u2"))
	count := func() int {
		return decode[notificationCount](t, call(t, svc, "GET", "/notifications/count?user_id=u2", ""), 200).Unread
	}
	mark := func(body string, headers ...string) int {
		return decode[markReadBody](t, call(t, svc, "POST", "/notifications/read", body, headers...), 200).Marked
	}

	if n := mark(`{"user_id":"u2","ids":["` + unread[0] + `","n999999"]}`); n != 1 {
		t.Fatalf("marked %d, want 1 (unknown ids ignored)", n)
	}
	if n := mark(`{"user_id":"u2","ids":["` + unread[0] + `"]}`); n != 0 {
		t.Errorf("marking again marked %d, want 0", n)
	}
	if got := count(); got != len(unread)-1 {
		t.Errorf("unread = %d, want %d", got, len(unread)-1)
	}
	// Another user's notification is not u2's to mark.
	other := unreadOf(seedNotificationsOf("u3"))[0]
	if n := mark(`{"user_id":"u2","ids":["` + other + `"]}`); n != 0 {
		t.Errorf("marked another user's notification")
	}
	if n := mark(`{"ids":[]}`, "X-User-ID", "u2"); n != len(unread)-1 {
		t.Errorf("mark all marked %d, want %d", n, len(unread)-1)
	}
	if got := count(); got != 0 {
		t.Errorf("unread after mark all = %d", got)
	}
	list := decode[notificationsBody](t, call(t, svc, "GET", "/notifications?user_id=u2", ""), 200)
	for _, n := range list.Notifications {
		if !n.Read {
			t.Errorf("%s still unread in the list", n.ID)
		}
	}

	svc.Reset()
	if got := count(); got != len(unread) {
		t.Errorf("unread after Reset = %d, want %d", got, len(unread))
	}

	t.Run("errors", func(t *testing.T) {
		wantError(t, call(t, svc, "POST", "/notifications/read", `{"ids":[]}`), 400, "VALIDATION_FAILED", "user_id")
		wantError(t, call(t, svc, "POST", "/notifications/read", `{"user_id":"u1","all":true}`), 400, "BAD_REQUEST", "all")
	})
}

func TestMarkReadConcurrently(t *testing.T) {
	svc := NewNotifications()
	unread := unreadOf(seedNotificationsOf("u4"))
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for range 8 {
		wg.Go(func() {
			rec := call(t, svc, "POST", "/notifications/read", `{"user_id":"u4"}`)
			n := decode[markReadBody](t, rec, 200).Marked
			call(t, svc, "GET", "/notifications/count?user_id=u4", "")
			mu.Lock()
			total += n
			mu.Unlock()
		})
	}
	wg.Wait()
	if total != len(unread) {
		t.Errorf("marked %d in all, want each of %d exactly once", total, len(unread))
	}
}
