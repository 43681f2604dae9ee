// Package systest boots throwaway Debian machines with a real systemd and a real apt, one per
// test, for the tests of resources that only mean something on a live system: packages,
// services, users and groups, hostname, timers. It is used only from _test.go files.
//
// # Model
//
// An Image is a Debian root tree built once by scripts/test-image.sh (make systest-image) and
// cached in $SATCHEL_TEST_CACHE/base (default /var/cache/satchel-test/base). It never changes
// while tests run: each Container stacks a private, writable overlay on it, so a boot copies
// nothing and a test may install packages, add users or break /etc at will; everything it did
// goes when the test ends.
//
// A Container is that overlay booted with systemd-nspawn: systemd is PID 1 in its own PID,
// mount, UTS and IPC namespaces, and shares the host's network (apt reaches the mirror; pass
// WithPrivateNetwork for a machine with loopback only). Boot returns once
// `systemctl is-system-running` says running or degraded, about half a second. Commands run
// inside through nsenter (Exec, MustExec, Command), with an empty environment but for PATH and
// HOME; files are written and read from the host side (WriteFile, ReadFile, CopyIn) through
// /proc/PID/root of the container's PID 1, so that paths resolve as they do for a process inside
// (symlinks stay inside the container's root; its own mounts, such as the tmpfs on /tmp, count). SatchelBinary builds the static
// satchel binary once per test process, and InstallSatchel copies it into a container.
//
//	func TestPackageInstall(t *testing.T) {
//		t.Parallel()
//		c := systest.Available(t).Boot(t)
//		c.InstallSatchel(t)
//		c.WriteFile(t, "/etc/satchel/site.hcl", []byte(config), 0o644)
//		c.MustExec(t, "satchel", "apply", "/etc/satchel")
//		if _, _, code := c.Exec(t, "dpkg-query", "-W", "hello"); code != 0 {
//			t.Fatal("hello is not installed")
//		}
//	}
//
// Every container has its own cgroups (a child of each systemd-relevant hierarchy, named after
// the machine), so parallel tests do not share one, and a machine name made from the test's
// name and a random suffix, which is also its hostname. apt's downloads are shared by all
// containers, of this run and later ones: /var/cache/apt/archives is an overlay whose lower
// layer is $SATCHEL_TEST_CACHE/apt-archives, and every complete .deb a container downloads is
// added to that directory after each Exec and at teardown. Containers never write to the shared
// directory themselves, so apt's lock on it is never contended.
//
// Teardown is registered with t.Cleanup: a clean halt (SIGTERM to nspawn, about 0.2 s), the
// machine's PID 1 killed if the halt takes too long, the overlay unmounted, the cgroups and
// nspawn's files in /run/systemd/nspawn removed. Only processes this package started are
// signalled. If the test failed, the tail of the machine's journal and its console are logged
// first. A test process that dies without running its cleanups (a -timeout panic, a kill) leaves
// a record in /run/satchel-systest; the next test process reaps what it left.
//
// # Where tests run
//
// Available decides: with root, systemd-nspawn, nsenter and the image present it returns the
// image; otherwise it skips the test, saying what is missing, or fails it when SATCHEL_SYSTEST=1
// (make check sets it, so CI never skips these tests). SATCHEL_TEST_IMAGE names another image
// directory.
//
// Containers need root, a cgroup hierarchy nspawn can use (cgroup v2, or v1 with a name=systemd
// hierarchy) and overlayfs; PID 1 of the host need not be systemd.
package systest
