# stevedore as an image: the statically linked binary and nothing else (no shell, no C
# library), so the image is the size of the binary and has nothing to patch but stevedore.
#
# The binary is built on the host and copied in (no toolchain image is needed; build once,
# use it for the image, the Debian package and the host alike):
#
#   RUSTFLAGS="-C target-feature=+crt-static" \
#     cargo build --release --target x86_64-unknown-linux-gnu
#   docker build -t stevedore .
#
# `+crt-static` links glibc in statically, which a FROM scratch image needs. Another
# binary can be given with `--build-arg BINARY=path/in/the/context`; .dockerignore sends
# only the release binary to the engine, not the gigabytes under target/.
#
# Run it with the host's cgroupfs, procfs and Docker socket mounted read-only: the README's
# "stevedore as an image" has the `docker run` line and says why each part is there.
FROM scratch
ARG BINARY=target/x86_64-unknown-linux-gnu/release/stevedore
COPY ${BINARY} /stevedore
EXPOSE 9417
ENTRYPOINT ["/stevedore"]
