# The veille image: crawler, scheduler and CLI (`docker run veille <verb>`; default: the scheduler).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    VEILLE_DATA=/data

WORKDIR /app
COPY pyproject.toml scrapy.cfg ./
COPY crawler ./crawler
COPY spiders ./spiders
COPY pipelines ./pipelines
COPY config ./config
# pyproject names README.md as the readme; tolerate its absence in a trimmed build context
RUN touch README.md
COPY README.m[d] ./
# editable: config/ is read next to the code (/app/config), so a mounted ./config is picked up
RUN pip install -e . \
    && useradd --uid 10001 --home-dir /data --no-create-home veille \
    && mkdir -p /data && chown veille /data

USER veille
VOLUME ["/data"]
ENTRYPOINT ["veille"]
CMD ["schedule"]
