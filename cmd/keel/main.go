// Command keel is Keel's single binary: `keel serve` runs the control plane,
// and the client commands (`keel server create`, `keel events tail`,
// `keel replay server ID`, ...) talk to its API.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	root := &cobra.Command{
		Use:           "keel",
		Short:         "Keel: a private-cloud compute control plane",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCmd())
	root.AddCommand(agentCmd())
	addClientCommands(root)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(newTerminalWriter(os.Stderr), "keel:", err)
		os.Exit(1)
	}
}
