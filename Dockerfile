# The bot as a container: the wheel built in one stage, installed with the pinned
# dependencies into a slim image in the next, run as an unprivileged user.
# Every step is deploy/image.sh, which tests/test_package.py runs too.
#
#   docker build -t thidua-bot .
#   docker run --env-file .env -p 8080:8080 thidua-bot
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY . .
RUN sh deploy/image.sh build /src /wheels

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    THIDUA_WEB_HOST=0.0.0.0 \
    THIDUA_WEB_PORT=8080 \
    DATABASE_URL=sqlite+aiosqlite:////var/lib/thidua/thidua.db
COPY --from=build /wheels /tmp/wheels
COPY deploy/image.sh /opt/thidua/image.sh
RUN sh /opt/thidua/image.sh install /tmp/wheels /opt/thidua/venv \
    && rm -rf /tmp/wheels \
    && useradd --system --home-dir /var/lib/thidua --create-home --shell /usr/sbin/nologin thidua
USER thidua
WORKDIR /var/lib/thidua
VOLUME ["/var/lib/thidua"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=6s --start-period=30s --retries=3 \
    CMD ["sh", "/opt/thidua/image.sh", "healthcheck"]
# The script execs `thidua run`, so the bot itself gets `docker stop`'s SIGTERM and exits 0.
CMD ["sh", "/opt/thidua/image.sh", "start"]
