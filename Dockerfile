# The image docker-compose.yml builds: dirsync with its worker, beat, web app and CLI.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY cli ./cli
COPY config ./config
COPY connectors ./connectors
COPY reconcile ./reconcile
COPY service ./service
COPY simulators ./simulators
COPY store ./store
COPY web ./web
COPY worker ./worker
RUN pip install --no-cache-dir '.[ops]' && useradd --system --home /app dirsync \
    && mkdir -p /var/lib/dirsync && chown dirsync /var/lib/dirsync
USER dirsync

CMD ["dirsync", "status"]
