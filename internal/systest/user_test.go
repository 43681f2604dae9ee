package systest

import (
	"strings"
	"testing"
)

// userHash is a password hash as /etc/shadow holds it (yescrypt); chpasswd --encrypted takes
// it as it is.
const userHash = "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7"

const userKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ1Y2tldHMgb2YgcmFpbiBvbiB0aGUgcm9vZg alice@laptop"

// userApply writes conf into the container and runs `satchel apply` (or plan) on it, returning
// the output and the exit status (--detailed-exitcode: 0 nothing changed, 2 changes).
func userApply(t *testing.T, c *Container, verb, conf string) (string, int) {
	t.Helper()
	c.WriteFile(t, "/etc/satchel/users/main.hcl", []byte(conf), 0o644)
	stdout, stderr, code := c.Exec(t, "satchel", verb, "--detailed-exitcode", "--node", "n", "/etc/satchel/users")
	return stdout + stderr, code
}

// userMustConverge applies conf, expecting changes and each of want in the output, then
// applies it again, expecting none.
func userMustConverge(t *testing.T, c *Container, conf string, want ...string) {
	t.Helper()
	out, code := userApply(t, c, "apply", conf)
	if code != 2 {
		t.Fatalf("apply exited %d, want 2 (changes):\n%s", code, out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("apply output lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, userHash) {
		t.Errorf("the password hash appears in the output:\n%s", out)
	}
	if out, code := userApply(t, c, "apply", conf); code != 0 || !strings.Contains(out, " 0 changed") {
		t.Errorf("second apply exited %d, want 0 and nothing changed:\n%s", code, out)
	}
}

// userCheck runs a command inside the container and compares its trimmed output.
func userCheck(t *testing.T, c *Container, want string, argv ...string) {
	t.Helper()
	stdout, stderr, code := c.Exec(t, argv...)
	if got := strings.TrimSpace(stdout); code != 0 || got != want {
		t.Errorf("%s: %q (exit %d, %s), want %q", strings.Join(argv, " "), got, code, strings.TrimSpace(stderr), want)
	}
}

// A user with a home and supplementary groups is created, then modified, then removed, by
// `satchel apply` on a booted Debian; the results are read back with getent, id and stat.
func TestUserLifecycle(t *testing.T) {
	t.Parallel()
	c := Available(t).Boot(t)
	c.InstallSatchel(t)

	created := `node "n" {
  group "teachers" {
    gid = 2000
  }
  group "pupils" {}
  user "alice" {
    uid                 = 1500
    group               = "teachers"
    groups              = ["pupils", "users"]
    shell               = "/bin/bash"
    comment             = "Alice Liddell"
    password            = "` + userHash + `"
    ssh_authorized_keys = ["` + userKey + `"]
    require             = [group.teachers, group.pupils]
  }
  user "bob" {}
}
`
	// A plan first: it says what will happen and does nothing.
	out, code := userApply(t, c, "plan", created)
	if code != 2 || !strings.Contains(out, "+ user.alice") || !strings.Contains(out, "+ group.teachers") ||
		!strings.Contains(out, "home_directory: absent -> /home/alice, owned by alice:teachers (from /etc/skel)") {
		t.Errorf("plan exited %d:\n%s", code, out)
	}
	if _, _, code := c.Exec(t, "getent", "passwd", "alice"); code != 2 {
		t.Fatalf("the plan created alice (getent exit %d)", code)
	}

	userMustConverge(t, c, created,
		"+ group.teachers", "+ group.pupils", "+ user.alice", "+ user.bob",
		"ssh_authorized_keys: absent -> 1 key (alice@laptop)")
	userCheck(t, c, "alice:x:1500:2000:Alice Liddell:/home/alice:/bin/bash", "getent", "passwd", "alice")
	pupils := strings.Split(strings.TrimSpace(c.MustExec(t, "getent", "group", "pupils")), ":")
	if len(pupils) != 4 || pupils[3] != "alice" {
		t.Fatalf("getent group pupils: %q", pupils)
	}
	userCheck(t, c, "uid=1500(alice) gid=2000(teachers) groups=2000(teachers),100(users),"+pupils[2]+"(pupils)", "id", "alice")
	userCheck(t, c, "alice:teachers 755 directory", "stat", "-c", "%U:%G %a %F", "/home/alice")
	userCheck(t, c, "alice:teachers 644", "stat", "-c", "%U:%G %a", "/home/alice/.bashrc")
	userCheck(t, c, "alice:teachers 700", "stat", "-c", "%U:%G %a", "/home/alice/.ssh")
	userCheck(t, c, "alice:teachers 600", "stat", "-c", "%U:%G %a", "/home/alice/.ssh/authorized_keys")
	userCheck(t, c, userKey, "cat", "/home/alice/.ssh/authorized_keys")
	userCheck(t, c, "alice:"+userHash, "sh", "-c", "getent shadow alice | cut -d: -f1,2")
	userCheck(t, c, "bob:bob 755", "stat", "-c", "%U:%G %a", "/home/bob")

	// Modified: another uid (the home follows), fewer groups, another shell, locked.
	modified := strings.NewReplacer(
		`uid                 = 1500`, `uid                 = 1505`,
		`groups              = ["pupils", "users"]`, `groups              = ["pupils"]`,
		`shell               = "/bin/bash"`, `shell               = "/bin/sh"`,
		`password            = "`+userHash+`"`, `password            = "!"`,
	).Replace(created)
	userMustConverge(t, c, modified,
		"~ user.alice", "uid: 1500 -> 1505", "groups: pupils,users -> pupils", "shell: /bin/bash -> /bin/sh",
		"password: (sensitive) -> (sensitive)")
	userCheck(t, c, "alice:x:1505:2000:Alice Liddell:/home/alice:/bin/sh", "getent", "passwd", "alice")
	userCheck(t, c, "uid=1505(alice) gid=2000(teachers) groups=2000(teachers),"+pupils[2]+"(pupils)", "id", "alice")
	userCheck(t, c, "alice:teachers", "stat", "-c", "%U:%G", "/home/alice")
	userCheck(t, c, "alice:teachers", "stat", "-c", "%U:%G", "/home/alice/.ssh/authorized_keys")
	userCheck(t, c, "alice:!", "sh", "-c", "getent shadow alice | cut -d: -f1,2")

	bobIDs := strings.TrimSpace(c.MustExec(t, "sh", "-c", "echo $(id -u bob):$(id -g bob)"))

	// Removed: alice with her home, then her primary group; bob without his home.
	removed := `node "n" {
  group "teachers" {
    ensure  = "absent"
    require = [user.alice]
  }
  group "pupils" {}
  user "alice" {
    ensure      = "absent"
    remove_home = true
  }
  user "bob" {
    ensure = "absent"
  }
}
`
	userMustConverge(t, c, removed,
		"x user.alice", "home_directory: /home/alice -> absent (removed with its content)", "x group.teachers", "x user.bob")
	for _, q := range [][]string{{"passwd", "alice"}, {"passwd", "bob"}, {"group", "teachers"}, {"group", "bob"}} {
		if out, _, code := c.Exec(t, "getent", q[0], q[1]); code != 2 {
			t.Errorf("getent %s %s: exit %d (%q), want 2 (not found)", q[0], q[1], code, out)
		}
	}
	if _, _, code := c.Exec(t, "test", "-e", "/home/alice"); code == 0 {
		t.Error("/home/alice survived remove_home = true")
	}
	userCheck(t, c, bobIDs+" directory", "stat", "-c", "%u:%g %F", "/home/bob")
	userCheck(t, c, "pupils:x:"+pupils[2]+":", "getent", "group", "pupils")
}
