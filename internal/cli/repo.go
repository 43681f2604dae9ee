package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/satchelcm/satchel/internal/lang"
	"github.com/satchelcm/satchel/internal/release"
	"github.com/satchelcm/satchel/internal/store"
)

const keysFlagHelp = "the keys `DIR` (default: satchel/keys in $XDG_CONFIG_HOME, else ~/.config)"

// keysDir returns --keys, or the default keys directory.
func keysDir(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	d, err := release.DefaultKeysDir()
	if err != nil {
		return "", &usageError{fmt.Errorf("%w: pass --keys DIR", err)}
	}
	return d, nil
}

func newRepoCmd(s *streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "repo",
		Short: "Make and check a signed release repository: init, verify, rotate-key",
		Long: `A release repository holds signed, versioned releases of a config repository: the
content store of the config trees, release manifests, and The Update Framework's signed
metadata. It holds no secret and can be published as it is, by any static file server,
mirror or USB stick. Keys live elsewhere (--keys).`,
		Args: wantArgs(0, "a subcommand: init, verify or rotate-key"),
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newRepoInit(s), newRepoVerify(s), newRepoRotateKey(s))
	return cmd
}

func newRepoInit(s *streams) *cobra.Command {
	var keys string
	var passphrase bool
	cmd := &cobra.Command{
		Use:   "init REPO [--keys DIR] [--passphrase]",
		Short: "Create an empty release repository and its root, targets, snapshot and timestamp keys",
		Long: `Create the release repository REPO (a new or empty directory) and four ed25519 keys, one
per role, as files of mode 0600 in the keys directory (mode 0700, never inside REPO).
Existing keys are never overwritten.

Publishing needs the targets, snapshot and timestamp keys. The root key is needed only to
change keys: move root.key to offline media (and keep a second copy) once init is done.
Give nodes REPO/metadata/root.json as their trusted root.

With --passphrase, or when SATCHEL_KEY_PASSPHRASE is set, the key files are encrypted with
a passphrase (age, scrypt): SATCHEL_KEY_PASSPHRASE's, else one asked for on the terminal.
Every command that reads them then needs it, from SATCHEL_KEY_PASSPHRASE or the terminal.`,
		Args: wantArgs(1, "REPO"),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := keysDir(keys)
			if err != nil {
				return err
			}
			if passphrase && os.Getenv(release.PassphraseEnv) == "" {
				if err := newPassphrase(s); err != nil {
					return err
				}
			}
			if err := release.Init(args[0], dir); err != nil {
				return fail("%v", err)
			}
			fmt.Fprintf(s.stdout, "initialized release repository %s (no release yet)\n", args[0])
			fmt.Fprintf(s.stdout, "keys: %s/{root,targets,snapshot,timestamp}.key; root.key can go offline\n", dir)
			if os.Getenv(release.PassphraseEnv) != "" {
				fmt.Fprintf(s.stdout, "the keys are encrypted with the passphrase: keep it apart from them\n")
			}
			fmt.Fprintf(s.stdout, "trusted root for nodes: %s\n", filepath.Join(args[0], release.MetadataDir, "root.json"))
			return nil
		},
	}
	cmd.Flags().StringVar(&keys, "keys", "", keysFlagHelp)
	cmd.Flags().BoolVar(&passphrase, "passphrase", false, "encrypt the keys with a passphrase (from $SATCHEL_KEY_PASSPHRASE, else asked for)")
	return cmd
}

// terminalIn returns the file descriptor of the command's input if it is a terminal.
func (s *streams) terminalIn() (int, bool) {
	f, ok := s.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0, false
	}
	return int(f.Fd()), true
}

// readPassphrase asks for a passphrase on the terminal, without echo.
func readPassphrase(s *streams, fd int, prompt string) (string, error) {
	fmt.Fprint(s.stderr, prompt)
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(s.stderr)
	if err != nil {
		return "", fail("read the passphrase: %v", err)
	}
	return string(b), nil
}

// newPassphrase asks for a new passphrase twice on the terminal and puts it in
// SATCHEL_KEY_PASSPHRASE, where the release package takes it from.
func newPassphrase(s *streams) error {
	fd, ok := s.terminalIn()
	if !ok {
		return &usageError{fmt.Errorf("--passphrase: set %s to the passphrase, or run from a terminal to be asked for it", release.PassphraseEnv)}
	}
	p, err := readPassphrase(s, fd, "passphrase for the new keys: ")
	if err != nil {
		return err
	}
	if p == "" {
		return fail("an empty passphrase protects nothing")
	}
	again, err := readPassphrase(s, fd, "the same passphrase again: ")
	if err != nil {
		return err
	}
	if again != p {
		return fail("the two passphrases differ: nothing done")
	}
	return os.Setenv(release.PassphraseEnv, p)
}

// askPassphrase asks for the keys' passphrase on the terminal, once, if some key in dirs
// is encrypted and SATCHEL_KEY_PASSPHRASE is not set, and puts it there. Without a
// terminal it does nothing: reading the key then says what is missing.
func askPassphrase(s *streams, dirs ...string) error {
	if os.Getenv(release.PassphraseEnv) != "" || !release.KeysEncrypted(dirs...) {
		return nil
	}
	fd, ok := s.terminalIn()
	if !ok {
		return nil
	}
	p, err := readPassphrase(s, fd, "passphrase of the keys: ")
	if err != nil {
		return err
	}
	return os.Setenv(release.PassphraseEnv, p)
}

func newRelease(s *streams) *cobra.Command {
	var repo, keys, notes, secretsDir, recipientsFile string
	var checks []string
	var checkTimeout time.Duration
	var toServer, previewOnly, force bool
	admin := &adminFlags{}
	cmd := &cobra.Command{
		Use:   "release CONFIG_DIR (--repo REPO [--keys DIR] | --server [--preview] [--force]) [--notes TEXT] [--health-check NAME=COMMAND]...",
		Short: "Check a config for every node, then publish it as the next signed release",
		Long: `Check CONFIG_DIR for every node it names (each inventory row and each node block without
wildcards, facts unknown, as satchel check does) and refuse to publish if any node fails,
listing them. Otherwise add the config to the repository's store and write and sign
release N+1 (N the latest release), with the targets, snapshot and timestamp keys
(encrypted keys are opened with SATCHEL_KEY_PASSPHRASE, else a passphrase asked for on the
terminal).

--health-check NAME=COMMAND (repeatable) adds a health check to the release: a command the
agent runs on each node after applying it, the release failing if the command exits
non-zero or runs longer than --health-timeout (default 60s, at most 1h, for every check).
COMMAND is run without a shell: it is either a JSON array of strings, the argv as it is
(web='["curl", "-fsS", "http://127.0.0.1/"]'), or else split on white space
(web='curl -fsS http://127.0.0.1/'). For pipes, quotes or variables, use the JSON form with
a shell: web='["sh", "-c", "curl -fsS http://127.0.0.1/ | grep ok"]'.

A config that reads per-node secrets, secret("activation/${node.name}.sig"), needs
--secrets DIR, where each secret is a file at its name (kept by the office, never in the
config repository), and --recipients FILE, the nodes' age recipients as 'satchel nodes
recipients' prints them. Each secret is encrypted to its node alone; a node not enrolled
yet gets its secrets in the first release after it enrolls (a warning says so).

With --server, the config goes to the satchel server of the admin credential
(--credential), which first previews it: it evaluates the release for every approved node
from the facts the node last reported and compares each node's catalog with its catalog
under the current release, printing which resources would be added (+), removed (-) or
changed (~), grouped by identical change, and which nodes it fails for. A release that
fails for any node is not published unless --force. --preview only previews. The server
signs with the keys in its data directory and encrypts the secrets it keeps there
(DATA/secrets/NAME) to each node.

Exit status 0 when published (or previewed without failures), 1 otherwise, 64 for a bad
flag.`,
		Args: wantArgs(1, "CONFIG_DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			toServer = toServer || previewOnly
			switch {
			case toServer && (repo != "" || keys != "" || secretsDir != "" || recipientsFile != ""):
				return &usageError{errors.New("--server publishes with the server's repository, keys and secrets: --repo, --keys, --secrets and --recipients go without it")}
			case !toServer && repo == "":
				return &usageError{errors.New("release needs the repository: --repo REPO, or --server")}
			case !toServer && force:
				return &usageError{errors.New("--force goes with --server")}
			}
			healthChecks, err := parseHealthChecks(checks, checkTimeout)
			if err != nil {
				return err
			}
			if info, err := os.Stat(args[0]); err != nil || !info.IsDir() {
				return fail("%s is not a config directory", args[0])
			}
			if toServer {
				return releaseToServer(s, admin, args[0], notes, healthChecks, previewOnly, force)
			}
			dir, err := keysDir(keys)
			if err != nil {
				return err
			}
			if err := askPassphrase(s, dir); err != nil {
				return err
			}
			secrets, err := secretsOptions(secretsDir, recipientsFile)
			if err != nil {
				return err
			}
			ctx, stop := interruptible()
			defer stop()
			show := newLineProgress(s.stderr)
			pub, err := release.Publish(ctx, repo, dir, args[0], release.Options{
				Notes:        notes,
				HealthChecks: healthChecks,
				Secrets:      secrets,
				Progress: func(p store.Progress) {
					show.set(fmt.Sprintf("storing: %d of %d files, %s of %s%s", p.Files, p.TotalFiles,
						humanBytes(p.Bytes), humanBytes(p.TotalBytes), percent(p.Bytes, p.TotalBytes)))
				},
			})
			show.done()
			var ce *release.CheckError
			if errors.As(err, &ce) {
				_ = lang.WriteDiagnostics(s.stderr, ce.Diags, ce.Sources)
				return fail("%v", ce)
			}
			if err != nil {
				return fail("%v", err)
			}
			for _, w := range pub.Warnings {
				fmt.Fprintf(s.stderr, "satchel: warning: %s\n", w)
			}
			fmt.Fprintf(s.stdout, "published release %d of %s to %s: config %s, %s checked (%s)\n",
				pub.Manifest.Version, args[0], repo, pub.Manifest.Config, plural(len(pub.Nodes), "node"), listNodes(pub.Nodes))
			if len(healthChecks) > 0 {
				names := make([]string, len(healthChecks))
				for i, h := range healthChecks {
					names[i] = h.Name
				}
				fmt.Fprintf(s.stdout, "health checks: %s (timeout %s each)\n", strings.Join(names, ", "), checkTimeout)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&repo, "repo", "", "the release repository `REPO` (made by satchel repo init)")
	cmd.Flags().StringVar(&keys, "keys", "", keysFlagHelp)
	cmd.Flags().StringVar(&notes, "notes", "", "notes for people, kept in the release manifest")
	cmd.Flags().StringArrayVar(&checks, "health-check", nil, "a health check the agent runs after applying: `NAME=COMMAND`, COMMAND a JSON array of strings or words split on white space, no shell (repeatable)")
	cmd.Flags().DurationVar(&checkTimeout, "health-timeout", 60*time.Second, "the time each health check may run")
	cmd.Flags().StringVar(&secretsDir, "secrets", "", "the `directory` of the secrets the config reads with secret(NAME), each a file at NAME")
	cmd.Flags().StringVar(&recipientsFile, "recipients", "", "the nodes' age recipients, a `file` of 'NODE age1…' lines (satchel nodes recipients)")
	cmd.Flags().BoolVar(&toServer, "server", false, "send the config to the server of the admin credential, which previews and publishes it")
	cmd.Flags().BoolVar(&previewOnly, "preview", false, "with the server: show what the release would change on every node, and publish nothing")
	cmd.Flags().BoolVar(&force, "force", false, "with --server: publish even if the release fails to evaluate for some nodes")
	admin.register(cmd)
	return cmd
}

// secretsOptions reads --secrets and --recipients.
func secretsOptions(dir, recipientsFile string) (*release.SecretsOptions, error) {
	if dir == "" && recipientsFile == "" {
		return nil, nil
	}
	if dir == "" || recipientsFile == "" {
		return nil, &usageError{errors.New("--secrets and --recipients go together")}
	}
	data, err := os.ReadFile(recipientsFile)
	if err != nil {
		return nil, fail("--recipients: %v", err)
	}
	opts := &release.SecretsOptions{Dir: dir, Recipients: map[string]string{}}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 || !strings.HasPrefix(fields[1], "age1") {
			return nil, fail("%s:%d: want 'NODE age1…'", recipientsFile, i+1)
		}
		opts.Recipients[fields[0]] = fields[1]
	}
	return opts, nil
}

// parseHealthChecks parses the --health-check flags, NAME=COMMAND, COMMAND a JSON array of
// strings when it starts with "[", else split on white space, and checks them, with
// timeout, by the release manifest's own rules. Any problem is a usage error.
func parseHealthChecks(specs []string, timeout time.Duration) ([]release.HealthCheck, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	var checks []release.HealthCheck
	for _, spec := range specs {
		name, command, ok := strings.Cut(spec, "=")
		if !ok || name == "" {
			return nil, &usageError{fmt.Errorf("--health-check %q: want NAME=COMMAND", spec)}
		}
		var argv []string
		if strings.HasPrefix(strings.TrimSpace(command), "[") {
			if err := json.Unmarshal([]byte(command), &argv); err != nil {
				return nil, &usageError{fmt.Errorf("--health-check %s: a COMMAND starting with \"[\" must be a JSON array of strings: %w", name, err)}
			}
		} else {
			argv = strings.Fields(command)
		}
		if len(argv) == 0 {
			return nil, &usageError{fmt.Errorf("--health-check %s: no command", name)}
		}
		checks = append(checks, release.HealthCheck{Name: name, Command: argv, Timeout: timeout})
	}
	// The manifest's own rules (names, lengths, timeout), on a manifest holding only these:
	// first with a timeout surely valid, to tell which flag is at fault.
	if err := checkHealthChecks(checks, time.Second); err != nil {
		return nil, &usageError{fmt.Errorf("--health-check: %s", strings.TrimPrefix(err.Error(), "release manifest: "))}
	}
	if err := checkHealthChecks(checks, timeout); err != nil {
		return nil, &usageError{fmt.Errorf("--health-timeout %s: %s", timeout, strings.TrimPrefix(err.Error(), "release manifest: "))}
	}
	return checks, nil
}

// checkHealthChecks checks health checks, each given timeout, as a release manifest's.
func checkHealthChecks(checks []release.HealthCheck, timeout time.Duration) error {
	probe := release.Manifest{Version: 1, Config: store.ID{1}, Created: time.Now().UTC().Truncate(time.Second)}
	for _, h := range checks {
		h.Timeout = timeout
		probe.HealthChecks = append(probe.HealthChecks, h)
	}
	_, err := probe.Encode()
	return err
}

func newRepoVerify(s *streams) *cobra.Command {
	var trust string
	cmd := &cobra.Command{
		Use:   "verify REPO [--trust ROOT_JSON]",
		Short: "Check a release repository whole: signatures, versions, hashes, manifests, store",
		Long: `Check the repository as a node would, from a trusted root (--trust, else the repository's
own metadata/1.root.json): the chain of root versions, timestamp, snapshot and targets
(signatures, versions, lengths, hashes, expiry), every release manifest against its signed
length and hash, each release's config tree complete in the store, and every chunk and
object of the store (a corrupt one is moved to the store's quarantine/).
Exit status 0 when everything is valid, 1 listing the problems otherwise.`,
		Args: wantArgs(1, "REPO"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var root []byte
			if trust != "" {
				b, err := os.ReadFile(trust)
				if err != nil {
					return fail("--trust: %v", err)
				}
				root = b
			}
			ctx, stop := interruptible()
			defer stop()
			rep, err := release.Verify(ctx, args[0], root)
			if err != nil {
				return fail("%v", err)
			}
			for _, p := range rep.Problems {
				fmt.Fprintf(s.stdout, "problem: %s\n", p)
			}
			var versions []string
			for _, m := range rep.Releases {
				versions = append(versions, fmt.Sprint(m.Version))
			}
			latest := "none"
			if len(versions) > 0 {
				latest = versions[len(versions)-1]
			}
			fmt.Fprintf(s.stdout, "%s: %s valid (latest: %s); store: %s, %s\n", args[0], plural(len(rep.Releases), "release"),
				latest, plural(rep.Store.Chunks, "chunk"), plural(rep.Store.Objects, "object"))
			if len(rep.Problems) > 0 {
				return fail("%s: %s", args[0], plural(len(rep.Problems), "problem"))
			}
			if len(versions) > 0 {
				fmt.Fprintf(s.stdout, "releases: %s\n", strings.Join(versions, ", "))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&trust, "trust", "", "the trusted root metadata `ROOT_JSON` (default: REPO/metadata/1.root.json)")
	return cmd
}

func newRepoRotateKey(s *streams) *cobra.Command {
	var keys, rootKeys string
	cmd := &cobra.Command{
		Use:   "rotate-key ROLE REPO [--keys DIR] [--root-keys DIR]",
		Short: "Replace the root, targets, snapshot or timestamp key of a release repository",
		Long: `Replace ROLE's key (root, targets, snapshot or timestamp) by a new ed25519 key, and write
new root metadata listing it instead of the old one, signed with the root key. For
targets, snapshot and timestamp, the repository is also signed anew with the new key (this
needs the other two of those keys as well). Nodes follow the change by themselves through
the chain of root versions; new nodes are given the new REPO/metadata/root.json.

The new key becomes ROLE.key in the keys directory (the root key's directory for root);
the old file is kept as ROLE.key.old-N, never overwritten or deleted. The root key is read
from --root-keys DIR (default: the keys directory): mount the offline media it lives on.
If a rotation is interrupted, run the same command again to finish it (the new key waits
as ROLE.key.new meanwhile). Encrypted keys are opened with SATCHEL_KEY_PASSPHRASE, else a
passphrase asked for on the terminal, and the new key is then encrypted with it as well.
Exit status 0 when rotated, 1 otherwise.`,
		Args: wantArgs(2, "ROLE and REPO"),
		RunE: func(cmd *cobra.Command, args []string) error {
			role, repo := args[0], args[1]
			switch role {
			case "root", "targets", "snapshot", "timestamp":
			default:
				return &usageError{fmt.Errorf("unknown role %q: want root, targets, snapshot or timestamp", role)}
			}
			dir, err := keysDir(keys)
			if err != nil {
				return err
			}
			rootDir := rootKeys
			if rootDir == "" {
				rootDir = dir
			}
			if err := askPassphrase(s, dir, rootDir); err != nil {
				return err
			}
			rot, err := release.RotateKey(repo, dir, rootDir, role)
			if err != nil {
				return fail("%v", err)
			}
			// Name the files by the directory as given, as init does.
			shown := dir
			if role == "root" {
				shown = rootDir
			}
			keyFile := release.KeyFile(shown, role)
			if rot.Resumed {
				fmt.Fprintf(s.stdout, "finished the interrupted rotation of the %s key\n", role)
			}
			if rot.Resigned {
				fmt.Fprintf(s.stdout, "rotated the %s key of %s: root version %d lists the new key; targets, snapshot and timestamp signed anew\n", role, repo, rot.RootVersion)
			} else {
				fmt.Fprintf(s.stdout, "rotated the %s key of %s: root version %d lists the new key\n", role, repo, rot.RootVersion)
			}
			old := "there was no old key file"
			if rot.OldKeyFile != "" {
				old = "the old one kept as " + filepath.Join(shown, filepath.Base(rot.OldKeyFile))
			}
			fmt.Fprintf(s.stdout, "new %s key: %s (%s)\n", role, keyFile, old)
			if role == "root" {
				fmt.Fprintf(s.stdout, "move both root keys back offline: the old one can still sign for nodes that have not refreshed since\n")
			}
			fmt.Fprintf(s.stdout, "nodes follow the new root by themselves; trusted root for new nodes: %s\n", filepath.Join(repo, release.MetadataDir, "root.json"))
			return nil
		},
	}
	cmd.Flags().StringVar(&keys, "keys", "", keysFlagHelp)
	cmd.Flags().StringVar(&rootKeys, "root-keys", "", "the `DIR` holding root.key, e.g. on offline media (default: the keys directory)")
	return cmd
}
