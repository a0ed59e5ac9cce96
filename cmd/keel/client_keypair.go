package main

import (
	"context"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/keel-cloud/keel/api"
)

func keypairCmd(g *globals) *cobra.Command {
	cmd := g.group("keypair", "Manage keypairs (SSH public keys for servers' first boot)", "keypairs")
	cmd.AddCommand(keypairCreateCmd(g),
		listCmd(g, keypairs, "List keypairs"),
		showCmd(g, keypairs, "Show a keypair"),
		deleteCmd(g, keypairs, "Delete a keypair (servers keep their copy of the key)"))
	return cmd
}

var keypairs = resource[api.Keypair]{kind: "keypair", path: api.Keypairs, scoped: true, table: writeKeypairs,
	detail: func(_ context.Context, w io.Writer, k api.Keypair) error {
		return writeFields(w, []field{{"ID", k.ID}, {"NAME", k.Name}, {"TYPE", k.Type}, {"FINGERPRINT", k.Fingerprint},
			{"PUBLIC KEY", k.PublicKey}, {"CREATED", fmtTime(k.CreatedAt)}})
	},
	filters: []filter{{flag: "name", meta: "NAME", usage: "only the keypair with this name"}}}

func keypairCreateCmd(g *globals) *cobra.Command {
	var file, key string
	cmd := &cobra.Command{
		Use:   "create NAME --public-key-file PATH",
		Short: "Record an SSH public key you already have",
		Long: `Record an SSH public key under a unique name. Keel never generates or keeps
a private key: make one with ssh-keygen and give its .pub file, e.g.
  keel keypair create laptop --public-key-file ~/.ssh/id_ed25519.pub
Accepted: ssh-ed25519, ecdsa-sha2-nistp256/384/521, ssh-rsa of at least 2048
bits. A server created with --key-name gets a copy of the key for its admin
user, keel.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pub, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			body := api.KeypairBody{Name: args[0], PublicKey: string(pub)}
			return createAndRead(cmd.Context(), g, keypairs, body, key, func(k api.Keypair) string { return k.ID })
		},
	}
	cmd.Flags().StringVar(&file, "public-key-file", "", "the public key file (one OpenSSH key line, e.g. ~/.ssh/id_ed25519.pub)")
	_ = cmd.MarkFlagRequired("public-key-file")
	idemFlag(cmd, &key)
	return cmd
}

func writeKeypairs(w io.Writer, items []api.Keypair) error {
	rows := make([][]string, 0, len(items))
	for _, k := range items {
		rows = append(rows, []string{k.ID, k.Name, k.Type, k.Fingerprint, fmtTime(k.CreatedAt)})
	}
	return writeTable(w, []string{"ID", "NAME", "TYPE", "FINGERPRINT", "CREATED"}, rows)
}
