package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/spf13/cobra"

	"github.com/keel-cloud/keel/api"
)

func imageCmd(g *globals) *cobra.Command {
	cmd := g.group("image", "Manage images (the disks servers boot from)", "images")
	cmd.AddCommand(imageCreateCmd(g), imageUploadCmd(g),
		listCmd(g, images, "List images"),
		showCmd(g, images, "Show an image"),
		deleteCmd(g, images, "Delete an image and its bytes"))
	return cmd
}

var images = resource[api.Image]{kind: "image", path: api.Images, scoped: true, table: writeImages,
	detail: func(_ context.Context, w io.Writer, im api.Image) error { return writeImage(w, im) },
	filters: []filter{
		{flag: "name", meta: "NAME", usage: "only images with this name"},
		{flag: "status", meta: "queued|active", usage: "only images in this status (queued, active)"},
	}}

func imageCreateCmd(g *globals) *cobra.Command {
	var body api.ImageBody
	var key, file string
	cmd := &cobra.Command{
		Use:   "create NAME --disk-format raw|qcow2|iso [--min-disk-gib N] [--min-ram-mib N] [--file PATH]",
		Short: "Create an image, and with --file upload its bytes",
		Long: `Create an image. It stays queued until its bytes are uploaded, here with
--file or later with 'keel image upload'. The file is streamed, not read
into memory.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body.Name = args[0]
			var f *os.File
			if file != "" { // fail before creating anything
				var err error
				if f, err = os.Open(file); err != nil {
					return err
				}
				defer f.Close()
			}
			if f == nil {
				return createAndRead(cmd.Context(), g, images, body, key, func(im api.Image) string { return im.ID })
			}
			var im api.Image
			c := call{method: http.MethodPost, path: api.Images, body: body, idemKey: key}
			if _, err := g.client.doJSON(cmd.Context(), c, &im); err != nil {
				return err
			}
			return g.uploadImage(cmd.Context(), im.ID, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&body.DiskFormat, "disk-format", "", "raw, qcow2 or iso")
	fl.StringVar(&body.Visibility, "visibility", "", "private (default: only your project sees and boots it) or public (every project; cloud admins only)")
	fl.IntVar(&body.MinDiskGiB, "min-disk-gib", 0, "smallest flavor disk this image fits on")
	fl.IntVar(&body.MinRAMMiB, "min-ram-mib", 0, "smallest flavor RAM this image runs with")
	fl.StringVar(&file, "file", "", "upload this file as the image's bytes")
	_ = cmd.MarkFlagRequired("disk-format")
	idemFlag(cmd, &key)
	return cmd
}

func imageUploadCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "upload ID|NAME PATH",
		Short: "Upload a queued image's bytes (streamed from the file)",
		Long: `Upload a queued image's bytes, streamed from the file. An image takes its
bytes once; uploads are not covered by Idempotency-Key.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[1])
			if err != nil {
				return err
			}
			defer f.Close()
			return g.uploadImage(cmd.Context(), args[0], f)
		},
	}
}

// uploadImage streams f into the image ref and prints the active image.
func (g *globals) uploadImage(ctx context.Context, ref string, f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", f.Name())
	}
	var im api.Image
	rep, err := g.client.upload(ctx, "/v1/images/"+seg(ref)+"/file", f, st.Size(), &im)
	if err != nil {
		return fmt.Errorf("upload %s: %w", f.Name(), err)
	}
	return g.emit(rep.raw, func(w io.Writer) error { return writeImage(w, im) })
}

func imageSize(im api.Image) string {
	if im.SizeBytes == nil {
		return ""
	}
	return fmtBytes(*im.SizeBytes)
}

func writeImages(w io.Writer, items []api.Image) error {
	rows := make([][]string, 0, len(items))
	for _, im := range items {
		rows = append(rows, []string{im.ID, im.Name, im.DiskFormat, im.Status, imageSize(im),
			itoa(im.MinDiskGiB), itoa(im.MinRAMMiB)})
	}
	return writeTable(w, []string{"ID", "NAME", "FORMAT", "STATUS", "SIZE", "MIN_DISK_GIB", "MIN_RAM_MIB"}, rows)
}

func writeImage(w io.Writer, im api.Image) error {
	size := imageSize(im)
	if im.SizeBytes != nil {
		size = fmt.Sprintf("%s (%d bytes)", size, *im.SizeBytes)
	}
	return writeFields(w, []field{
		{"ID", im.ID}, {"NAME", im.Name}, {"STATUS", im.Status}, {"VISIBILITY", im.Visibility}, {"DISK_FORMAT", im.DiskFormat},
		{"SIZE", size}, {"SHA256", deref(im.SHA256)}, {"MIN_DISK_GIB", itoa(im.MinDiskGiB)},
		{"MIN_RAM_MIB", itoa(im.MinRAMMiB)}, {"CREATED", fmtTime(im.CreatedAt)}, {"UPDATED", fmtTime(im.UpdatedAt)},
	})
}
