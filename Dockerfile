# adsmith: multi-stage build on Debian bookworm. Packages come from
# scripts/install-deps.sh, the same script the README's commands use.

FROM debian:bookworm-slim AS build
# The build context has no .git: pass the commit, e.g.
#   docker build --build-arg ADSMITH_COMMIT=$(git describe --always --dirty) .
ARG ADSMITH_COMMIT=unknown
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN scripts/install-deps.sh build && rm -rf /var/lib/apt/lists/*
COPY . .
RUN meson setup /build -Dtests=false -Dbuildtype=release -Dcommit="$ADSMITH_COMMIT" \
 && meson compile -C /build adsmith \
 && strip /build/adsmith

FROM debian:bookworm-slim
COPY scripts/install-deps.sh /usr/local/lib/adsmith/install-deps.sh
RUN /usr/local/lib/adsmith/install-deps.sh runtime && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/adsmith --shell /usr/sbin/nologin adsmith \
 && mkdir -p /var/lib/adsmith/data && chown -R adsmith:adsmith /var/lib/adsmith
COPY --from=build /build/adsmith /usr/local/bin/adsmith
USER adsmith
WORKDIR /var/lib/adsmith
VOLUME /var/lib/adsmith/data
ENV ADSMITH_LISTEN=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=2s --start-period=5s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
STOPSIGNAL SIGTERM
CMD ["adsmith", "serve", "--data-dir", "/var/lib/adsmith/data"]
