# syntax=docker/dockerfile:1
# app2app-proxy: a small non-root image. Config and keys are mounted, never baked in.
#   docker build -t app2app-proxy .
#   docker run --read-only --tmpfs /tmp \
#              -v $PWD/config.yaml:/etc/app2app-proxy/config.yaml:ro \
#              -v $PWD/keys:/etc/app2app-proxy/keys:ro -e TOKEN_ENCRYPTION_KEY=... \
#              -p 8080:8080 app2app-proxy
# Production: docs/deploy.md (compose, Kubernetes, the Redis settings it needs).

# Builder: the wheels of exactly what uv.lock locks for the runtime (hash-checked), and
# the project's own wheel. The dependencies ship binary wheels for CPython 3.11 on amd64
# and arm64, so no compiler is needed; if one ever is, it belongs here and never in the
# final stage. uv is installed from the lock too (scripts/lockfile.py), only here.
FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_NO_CACHE=1 UV_PYTHON_DOWNLOADS=never
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
COPY scripts/lockfile.py ./scripts/
COPY proxy ./proxy
COPY federation ./federation
RUN python scripts/lockfile.py uv-requirement > /tmp/uv.txt \
    && pip install --no-deps --require-hashes -r /tmp/uv.txt \
    && mkdir /wheels \
    && uv export --locked --no-default-groups --no-emit-project --format requirements-txt \
                 --output-file /wheels/requirements.txt \
    && pip wheel --no-deps --require-hashes -r /wheels/requirements.txt --wheel-dir /wheels \
    && uv build --quiet --wheel --out-dir /wheels

# Final: the locked wheels installed from the builder (mounted for one step, so no wheel
# file stays in a layer), their hashes checked again; no build tools, no pip cache, no
# source tree.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels --no-deps --require-hashes \
                -r /wheels/requirements.txt \
    && pip install --no-index --no-deps /wheels/app2app_proxy-*.whl \
    && pip check \
    && groupadd --system --gid 10001 app2app \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
               --home-dir /nonexistent --shell /usr/sbin/nologin app2app \
    && mkdir -p /etc/app2app-proxy
# Nothing is written outside /tmp: byte code was compiled when the wheels were installed,
# logs go to stdout. Run it with a read-only root filesystem and a tmpfs on /tmp
# (serve --workers N keeps its Prometheus multiprocess files in a folder there).
WORKDIR /tmp

USER 10001:10001
EXPOSE 8080
# no curl in slim: Python's urllib is the probe
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"]
# SIGTERM: /readyz turns 503, requests are still served for --drain-delay (2 s), then
# those in flight get --shutdown-timeout (20 s). Give the container 30 s to stop.
STOPSIGNAL SIGTERM
ENTRYPOINT ["app2app-proxy"]
CMD ["serve", "--config", "/etc/app2app-proxy/config.yaml", "--host", "0.0.0.0", "--port", "8080"]
