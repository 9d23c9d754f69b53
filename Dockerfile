# The tenantvec control plane: the HTTP API (tenantctl serve) and the tenantctl CLI.
#
# Built by compose.yaml; runs against an external catalog (TENANTVEC_CATALOG_URL) and
# registered tenant servers. Installs the pinned versions of constraints.txt.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY controlplane ./controlplane
COPY tenant_schema ./tenant_schema
COPY cli ./cli
RUN PIP_CONSTRAINT=constraints.txt pip install '.[server]' \
    && useradd --system --uid 10001 --home-dir /var/lib/tenantvec --create-home tenantvec

# Never root: a compromise of the API must not own the container.
USER tenantvec
ENV TENANTVEC_HOME=/var/lib/tenantvec
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2)"]
CMD ["tenantctl", "serve", "--host", "0.0.0.0", "--port", "8000"]
