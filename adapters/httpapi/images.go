package httpapi

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/keel-cloud/keel/adapters/postgres"
	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/image"
)

// ImageOutput is one image.
type ImageOutput struct {
	Written
	Location string `header:"Location"`
	Body     api.Image
}

// uploadInput streams the request body instead of reading it into memory.
type uploadInput struct {
	IDParam
	body io.Reader
}

// Resolve implements huma.Resolver: it keeps the body reader for streaming.
func (u *uploadInput) Resolve(ctx huma.Context) []error {
	u.body = ctx.BodyReader()
	return nil
}

func imageView(id string, s image.State) api.Image {
	v := api.Image{ID: id, Name: s.Spec.Name, DiskFormat: s.Spec.DiskFormat, MinDiskGiB: s.Spec.MinDiskGiB,
		MinRAMMiB: s.Spec.MinRAMMiB, Status: string(s.Status), CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt, Visibility: "public"}
	if s.Spec.Project != "" {
		v.ProjectID, v.Visibility = &s.Spec.Project, "private"
	}
	if s.Status == image.Active {
		size, sum := s.Size, s.SHA256
		v.SizeBytes, v.SHA256 = &size, &sum
	}
	return v
}

func (a *API) registerImages(hapi huma.API) {
	huma.Register(hapi, huma.Operation{OperationID: "create-image", Method: http.MethodPost, Path: "/v1/images",
		Summary: "Create an image", Description: "The image is queued until its bytes are uploaded with PUT /v1/images/{id}/file. " +
			"A private image (the default) belongs to the caller's project, which alone sees and boots it; cloud admins may make public images, which every project boots. " +
			"Names are unique among a project's images and among public images.",
		Tags: []string{"images"}, DefaultStatus: http.StatusCreated},
		func(ctx context.Context, in *struct{ Body api.ImageBody }) (*ImageOutput, error) {
			if err := domain.CheckName("name", in.Body.Name); err != nil {
				return nil, a.fail(ctx, err)
			}
			cid := commandID(ctx)
			spec := image.Spec{Name: in.Body.Name, DiskFormat: in.Body.DiskFormat, MinDiskGiB: in.Body.MinDiskGiB, MinRAMMiB: in.Body.MinRAMMiB}
			if in.Body.Visibility != "public" {
				spec.Project = ownProject(ctx)
			} else if p, _ := principalFrom(ctx); !p.CloudAdmin {
				return nil, forbidden(ctx, "public images are made by cloud admins; leave visibility out for an image of your project")
			}
			res, err := a.App.CreateImage(ctx, spec, a.meta(ctx, cid))
			id := string(res.State.ID)
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			return &ImageOutput{Written: Written{res.Seq}, Location: "/v1/images/" + id,
				Body: imageView(id, res.State)}, nil
		})

	huma.Register(hapi, huma.Operation{OperationID: "upload-image", Method: http.MethodPut, Path: "/v1/images/{id}/file",
		Summary: "Upload an image's bytes", Tags: []string{"images"},
		Description: "Streams the raw bytes into the JetStream object store, records their size and sha256, and makes the image active. Not limited to 1 MiB.",
		RequestBody: &huma.RequestBody{Required: true, Content: map[string]*huma.MediaType{
			// No schema: any bytes. (A binary schema would carry
			// contentMediaType into the OpenAPI 3.0 form, where it is invalid.)
			"application/octet-stream": {}}}},
		func(ctx context.Context, in *uploadInput) (*ImageOutput, error) {
			id, err := a.imageID(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			st, _, err := a.App.Images.Load(ctx, id)
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			switch {
			case !st.Exists || st.Status == image.Deleted || !owns(ctx, st.Spec.Project):
				return nil, notFound(ctx, "image", in.ID)
			case st.Status != image.Queued:
				return nil, problem(ctx, http.StatusConflict, "image "+id+" already has data (sha256 "+st.SHA256+"); create a new image instead")
			}
			// Each upload has its own object, so concurrent uploads never mix:
			// the one the aggregate accepts keeps its bytes, the others are removed.
			cid := commandID(ctx)
			object := "image/" + id + "/" + cid
			size, sum, err := a.putImage(ctx, object, in.body)
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			if size == 0 {
				a.dropObject(ctx, object)
				return nil, problem(ctx, http.StatusUnprocessableEntity, "the request body is empty; send the image bytes")
			}
			res, err := a.App.Images.Handle(ctx, id, image.RecordUpload{Object: object, Size: size, SHA256: sum, At: a.App.Now().UTC()}, a.meta(ctx, cid))
			if err != nil {
				if domain.KindOf(err) != 0 {
					a.dropObject(ctx, object) // refused: these bytes belong to no image
				}
				return nil, a.fail(ctx, err)
			}
			return &ImageOutput{Written: Written{res.Seq}, Body: imageView(id, res.State)}, nil
		})

	huma.Register(hapi, huma.Operation{OperationID: "list-images", Method: http.MethodGet, Path: "/v1/images",
		Summary: "List images", Description: "The public images and the project's own, a page at a time; filter by name or status.",
		Tags: []string{"images"}},
		func(ctx context.Context, in *struct {
			ReadAfter
			PageParams
			AllProjects
			Name   string `query:"name" maxLength:"255"`
			Status string `query:"status" enum:"queued,active"`
		}) (*ListOutput[api.Image], error) {
			if err := a.waitRead(ctx, in.ReadAfter); err != nil {
				return nil, err
			}
			scope, err := a.listScope(ctx, in.AllProjects)
			if err != nil {
				return nil, err
			}
			items, next, err := a.Read.Images(ctx, postgres.ImageFilter{Scope: scope, Name: in.Name, Status: in.Status}, in.page())
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			return pageOut(items, next, imageOut), nil
		})

	huma.Register(hapi, huma.Operation{OperationID: "get-image", Method: http.MethodGet, Path: "/v1/images/{id}",
		Summary: "Show an image", Description: "One image by id or unique name, with its size and sha256 once uploaded.",
		Tags: []string{"images"}},
		func(ctx context.Context, in *struct {
			ReadAfter
			IDParam
		}) (*ImageOutput, error) {
			if err := a.waitRead(ctx, in.ReadAfter); err != nil {
				return nil, err
			}
			id, err := a.imageID(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			im, err := a.Read.Image(ctx, id)
			if err != nil {
				return nil, a.notFoundOr(ctx, err, "image", in.ID)
			}
			if !visible(ctx, im.ProjectID, true) {
				return nil, notFound(ctx, "image", in.ID)
			}
			return &ImageOutput{Body: imageOut(im)}, nil
		})

	huma.Register(hapi, huma.Operation{OperationID: "delete-image", Method: http.MethodDelete, Path: "/v1/images/{id}",
		Summary: "Delete an image", Description: "Servers already built from the image are not changed.",
		Tags: []string{"images"}, DefaultStatus: http.StatusNoContent},
		func(ctx context.Context, in *IDParam) (*DeletedOutput, error) {
			id, err := a.imageID(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			res, err := a.App.DeleteImage(ctx, id, a.meta(ctx, commandID(ctx)))
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			if res.State.Object != "" {
				a.dropObject(ctx, res.State.Object)
			}
			return &DeletedOutput{Written{res.Seq}}, nil
		})
}

func (a *API) imageID(ctx context.Context, ref string) (string, error) {
	return a.resolveUnique(ctx, commands.KindImage, ref)
}

// putImage streams body into object. A body that ends early (the client
// stopped sending, or its connection broke) is the client's fault:
// errBodyEnded, with nothing left in the object store, so the image can be
// uploaded again. The store's own cleanup of a failed upload needs a live
// context, hence WithoutCancel; the body's errors still end the upload.
func (a *API) putImage(ctx context.Context, object string, body io.Reader) (int64, string, error) {
	br := &bodyReader{r: body}
	size, sum, err := a.Images.Put(context.WithoutCancel(ctx), object, br)
	if err == nil {
		return size, sum, nil
	}
	a.dropObject(ctx, object)
	if br.err != nil {
		return 0, "", fmt.Errorf("upload %s: %w (%s)", object, errBodyEnded, bodyErrorText(br.err))
	}
	return 0, "", err
}

// bodyReader remembers the first error reading a request body other than EOF.
type bodyReader struct {
	r   io.Reader
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

func (a *API) dropObject(ctx context.Context, object string) {
	if err := a.Images.Delete(context.WithoutCancel(ctx), object); err != nil {
		a.Log.Warn("image bytes left behind", "object", object, "err", err)
	}
}
