// Package registrytest is the conformance suite every registry.Store implementation runs:
//
//	func TestConformance(t *testing.T) {
//		registrytest.Run(t, func(t *testing.T) registry.Store {
//			s, err := Open(filepath.Join(t.TempDir(), "state.db"))
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// Run calls open once per subtest, for an empty store of its own, and runs the subtests in
// parallel. The suite checks each method's contract as package registry documents it:
// the errors (ErrNotFound, ErrExists, and ErrTokenInvalid with its reason), the order of
// lists, idempotent reports, and that 50 concurrent uses of a 10-use token admit exactly
// 10. Times it stores are whole microseconds, in a zone other than UTC, to check that
// times come back equal. Persistence across Close and reopening is the implementation's
// own test, since only it knows how to reopen.
package registrytest
