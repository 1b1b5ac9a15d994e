# The rh-parallel demo as a container (used by deploy/docker-compose.yml).
FROM python:3.11.11-slim-bookworm
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir . && useradd --create-home demo
USER demo
ENTRYPOINT ["rh-parallel"]
CMD ["demo", "--loop", "--mode", "collapsed"]
