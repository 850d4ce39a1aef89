# app2app-proxy: config and keys are mounted, never baked in.
#   docker run -v $PWD/config.yaml:/etc/app2app-proxy/config.yaml:ro \
#              -v $PWD/keys:/etc/app2app-proxy/keys:ro -e TOKEN_ENCRYPTION_KEY=... \
#              -p 8080:8080 app2app-proxy
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY proxy ./proxy
COPY federation ./federation
RUN pip install . && useradd --system --uid 10001 --no-create-home app2app

USER 10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=2s --start-period=5s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"
ENTRYPOINT ["app2app-proxy"]
CMD ["serve", "--config", "/etc/app2app-proxy/config.yaml", "--host", "0.0.0.0", "--port", "8080"]
