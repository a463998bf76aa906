# The image docker-compose.yml builds: dirsync with its worker, beat and CLI.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY config ./config
COPY connectors ./connectors
COPY reconcile ./reconcile
COPY store ./store
COPY worker ./worker
RUN pip install --no-cache-dir '.[ops]' && useradd --system --home /app dirsync \
    && mkdir -p /var/lib/dirsync && chown dirsync /var/lib/dirsync
USER dirsync

CMD ["dirsync", "status"]
