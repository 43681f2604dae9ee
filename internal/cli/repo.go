package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

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
		Short: "Make and check a signed release repository: init, verify",
		Long: `A release repository holds signed, versioned releases of a config repository: the
content store of the config trees, release manifests, and The Update Framework's signed
metadata. It holds no secret and can be published as it is, by any static file server,
mirror or USB stick. Keys live elsewhere (--keys).`,
		Args: wantArgs(0, "a subcommand: init or verify"),
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newRepoInit(s), newRepoVerify(s))
	return cmd
}

func newRepoInit(s *streams) *cobra.Command {
	var keys string
	cmd := &cobra.Command{
		Use:   "init REPO [--keys DIR]",
		Short: "Create an empty release repository and its root, targets, snapshot and timestamp keys",
		Long: `Create the release repository REPO (a new or empty directory) and four ed25519 keys, one
per role, as files of mode 0600 in the keys directory (mode 0700, never inside REPO).
Existing keys are never overwritten.

Publishing needs the targets, snapshot and timestamp keys. The root key is needed only to
change keys: move root.key to offline media (and keep a second copy) once init is done.
Give nodes REPO/metadata/root.json as their trusted root.`,
		Args: wantArgs(1, "REPO"),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := keysDir(keys)
			if err != nil {
				return err
			}
			if err := release.Init(args[0], dir); err != nil {
				return fail("%v", err)
			}
			fmt.Fprintf(s.stdout, "initialized release repository %s (no release yet)\n", args[0])
			fmt.Fprintf(s.stdout, "keys: %s/{root,targets,snapshot,timestamp}.key; root.key can go offline\n", dir)
			fmt.Fprintf(s.stdout, "trusted root for nodes: %s\n", filepath.Join(args[0], release.MetadataDir, "root.json"))
			return nil
		},
	}
	cmd.Flags().StringVar(&keys, "keys", "", keysFlagHelp)
	return cmd
}

func newRelease(s *streams) *cobra.Command {
	var repo, keys, notes string
	cmd := &cobra.Command{
		Use:   "release CONFIG_DIR --repo REPO [--keys DIR] [--notes TEXT]",
		Short: "Check a config for every node, then publish it as the next signed release",
		Long: `Check CONFIG_DIR for every node it names (each inventory row and each node block without
wildcards, facts unknown, as satchel check does) and refuse to publish if any node fails,
listing them. Otherwise add the config to the repository's store and write and sign
release N+1 (N the latest release), with the targets, snapshot and timestamp keys.
Exit status 0 when published, 1 otherwise.`,
		Args: wantArgs(1, "CONFIG_DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if repo == "" {
				return &usageError{errors.New("release needs the repository: --repo REPO")}
			}
			dir, err := keysDir(keys)
			if err != nil {
				return err
			}
			if info, err := os.Stat(args[0]); err != nil || !info.IsDir() {
				return fail("%s is not a config directory", args[0])
			}
			ctx, stop := interruptible()
			defer stop()
			show := newLineProgress(s.stderr)
			pub, err := release.Publish(ctx, repo, dir, args[0], release.Options{
				Notes: notes,
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
			fmt.Fprintf(s.stdout, "published release %d of %s to %s: config %s, %s checked (%s)\n",
				pub.Manifest.Version, args[0], repo, pub.Manifest.Config, plural(len(pub.Nodes), "node"), listNodes(pub.Nodes))
			return nil
		},
	}
	cmd.Flags().StringVar(&repo, "repo", "", "the release repository `REPO` (made by satchel repo init)")
	cmd.Flags().StringVar(&keys, "keys", "", keysFlagHelp)
	cmd.Flags().StringVar(&notes, "notes", "", "notes for people, kept in the release manifest")
	return cmd
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
