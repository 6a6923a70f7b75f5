# CarHub lab image: one image for the car (carhub), the phone (phone-bridge) and the virtual
# Bluetooth radio (carhub-radio). Debian's python3 plus a venv with the project installed,
# running as a non-root user.
#
#   docker build -t carhub/carhub:local .
#   docker run --rm carhub/carhub:local carhub --help
#
# The default base is built locally by scripts/build_base_image.sh (debootstrap, no
# registry). With registry access, any Debian base works: the base stage installs python3
# when it is missing, e.g. --build-arg BASE_IMAGE=debian:bookworm-slim.
ARG BASE_IMAGE=carhub/bookworm-python:local

FROM ${BASE_IMAGE} AS base
ENV LANG=C.UTF-8
RUN if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then \
        apt-get update \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            python3 python3-venv ca-certificates \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && useradd --uid 10001 --user-group --create-home --home-dir /home/carhub \
        --shell /usr/sbin/nologin carhub

# ---- builder: resolves and installs the Python dependencies; none of it ships but /opt/venv
FROM base AS builder
# Extra CA certificates (PEM text) for networks that intercept TLS, as a CI sandbox does.
# Only this stage sees them, so they never reach the final image or its history.
ARG EXTRA_CA_CERTS=""
ARG PIP_INDEX_URL_ARG=https://pypi.org/simple
ARG PIP_TIMEOUT=180
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PIP_INDEX_URL=${PIP_INDEX_URL_ARG} \
    PIP_DEFAULT_TIMEOUT=${PIP_TIMEOUT} \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN if [ -n "$EXTRA_CA_CERTS" ]; then \
        printf '%s\n' "$EXTRA_CA_CERTS" >/usr/local/share/ca-certificates/build-extra.crt \
        && update-ca-certificates >/dev/null; \
    fi \
    && python3 -m venv /opt/venv
# Dependencies and build backend first, read from pyproject.toml, so that editing the code
# reuses this layer and the project install below needs no network at all.
COPY pyproject.toml /src/
RUN python3 -c 'import tomllib; t = tomllib.load(open("/src/pyproject.toml", "rb")); print("\n".join(t["project"]["dependencies"] + t["build-system"]["requires"]))' \
        >/tmp/requirements.txt \
    && /opt/venv/bin/pip install -q -r /tmp/requirements.txt
COPY . /src
RUN /opt/venv/bin/pip install -q --no-deps --no-build-isolation /src \
    && /opt/venv/bin/pip uninstall -q -y pip setuptools \
    && mkdir -p /src/samples/media

# ---- runtime
FROM base
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /src/samples /app/samples
# One entrypoint for the three programs; anything else (sh, python) runs as given.
RUN printf '%s\n' \
        '#!/bin/sh' \
        'case "${1:-}" in' \
        '  ""|-h|--help) echo "usage: docker run IMAGE carhub|phone-bridge|carhub-radio [ARGS...]"; exit 0 ;;' \
        'esac' \
        'exec "$@"' >/usr/local/bin/carhub-entrypoint \
    && chmod 0755 /usr/local/bin/carhub-entrypoint \
    && mkdir -p /state /samples \
    && chown carhub:carhub /state /samples
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1
USER carhub
WORKDIR /app
# 7000: virtual radio (HCI over TCP); 7800: car session port; 8080: car dashboard.
EXPOSE 7000 7800 8080
ENTRYPOINT ["carhub-entrypoint"]
CMD ["--help"]
