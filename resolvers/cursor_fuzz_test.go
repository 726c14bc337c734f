package resolvers

import "testing"

// FuzzDecodeCursor feeds client-supplied `after` strings to decodeCursor. A cursor it accepts
// has a skip within [0, maxLimit] (it sizes the limit asked of the orders service) and survives
// encode/decode unchanged; a cursor built from any accepted position decodes back to it.
func FuzzDecodeCursor(f *testing.F) {
	for _, c := range []cursor{{}, {after: "b186MTIz", skip: 0}, {after: "x:y:z", skip: 7}, {skip: maxLimit}} {
		f.Add(c.encode(), c.after, c.skip)
	}
	f.Add("MTAxOg", "", 101) // "101:" is past maxLimit
	f.Add("LTE6eA", "x", -1) // "-1:x"
	f.Add("KzU6", "", 5)     // "+5:"
	f.Add("OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTo", "", 0)
	f.Add("not base64!", "\x00", 3)
	f.Fuzz(func(t *testing.T, s, after string, skip int) {
		if c, ok := decodeCursor(s); ok {
			if c.skip < 0 || c.skip > maxLimit {
				t.Fatalf("decodeCursor(%q) accepted skip %d", s, c.skip)
			}
			if again, ok := decodeCursor(c.encode()); !ok || again != c {
				t.Fatalf("decodeCursor(%q) = %+v; re-encoded it decodes to %+v, %v", s, c, again, ok)
			}
		}
		if skip < 0 || skip > maxLimit {
			return
		}
		c := cursor{after: after, skip: skip}
		if got, ok := decodeCursor(c.encode()); !ok || got != c {
			t.Fatalf("decode(encode(%+v)) = %+v, %v", c, got, ok)
		}
	})
}
