# The tms binary in a small image. cgo stays on: the geofence's H3 index
# (uber/h3-go) is C, so the runtime image carries glibc.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
RUN go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/tms ./cmd/tms

FROM gcr.io/distroless/base-debian12:nonroot
COPY --from=build /out/tms /usr/local/bin/tms
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/tms"]
CMD ["serve"]
