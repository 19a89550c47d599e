"""Scrapy settings for Veille (the default settings module named in scrapy.cfg).

Polite by default: robots.txt obeyed, AutoThrottle on, a few requests per domain, a
User-Agent with a contact URL. Every Veille-specific setting starts with VEILLE_ and can be
overridden like any Scrapy setting (`-s NAME=value`, or the environment variable of the
same name for the ones read by `crawler.config`).
"""
import os

BOT_NAME = "veille"
SPIDER_MODULES = ["spiders"]
NEWSPIDER_MODULE = "spiders"

USER_AGENT = os.environ.get(
    "VEILLE_USER_AGENT",
    "Veille/0.1 (+https://github.com/veille-news/veille; news monitoring; contact: ops@veille.invalid)",
)
ROBOTSTXT_OBEY = True

# Politeness: AutoThrottle adapts the delay to each site's latency.
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0
DOWNLOAD_DELAY = 0.5
CONCURRENT_REQUESTS = 32
CONCURRENT_REQUESTS_PER_DOMAIN = 4
# A response gives one article or a list of links: Scrapy's default of 100 parallel item
# slots per response only adds event-loop tasks.
CONCURRENT_ITEMS = 16

DOWNLOAD_TIMEOUT = 30
DOWNLOAD_MAXSIZE = 8 * 1024 * 1024
DOWNLOAD_WARNSIZE = 2 * 1024 * 1024
RETRY_ENABLED = True
RETRY_TIMES = 2
# 404 too: feeds and sitemaps list fresh articles before every CDN node has them.
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429, 404]
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
FEED_EXPORT_ENCODING = "utf-8"
LOG_LEVEL = "INFO"

# Every middleware is a layer each request, response and item goes through: the ones a news
# crawl has no use for are off (no HTTP auth, no depth limit, no Referer header; Veille counts
# its own stats). HttpProxyMiddleware stays: ops behind a proxy set HTTP(S)_PROXY.
DOWNLOADER_MIDDLEWARES = {
    "crawler.middlewares.AddressGuardMiddleware": 50,
    "crawler.middlewares.ConditionalGetMiddleware": 560,
    "scrapy.downloadermiddlewares.httpauth.HttpAuthMiddleware": None,
    "scrapy.downloadermiddlewares.stats.DownloaderStats": None,
}
SPIDER_MIDDLEWARES = {
    "crawler.middlewares.IncrementalMiddleware": 600,
    "scrapy.spidermiddlewares.referer.RefererMiddleware": None,
    "scrapy.spidermiddlewares.depth.DepthMiddleware": None,
}
ITEM_PIPELINES = {
    "pipelines.extract.ExtractPipeline": 200,
    "pipelines.boilerplate.BoilerplatePipeline": 300,
    "pipelines.dedup.DedupPipeline": 500,
    "pipelines.store.StorePipeline": 600,
    # Topic alerts: after the store (change, cluster_id known), before the search index (sees topics).
    "pipelines.alerts.AlertPipeline": 650,
    # Search cluster (Elasticsearch/OpenSearch): off unless ELASTICSEARCH_URL / OPENSEARCH_URL is set.
    "pipelines.searchindex.SearchIndexPipeline": 700,
}
EXTENSIONS = {
    "crawler.extensions.RunRecorder": 500,
}

# --- Veille ---------------------------------------------------------------------------
# Hosts the address guard lets through although they are loopback/private ('host' or 'host:port').
VEILLE_ALLOWED_HOSTS: list[str] = []
# Processes used for extraction (the CPU cost of a crawl); 0 = one per core plus one.
VEILLE_EXTRACT_WORKERS = 0
# Where the store, WARC archives and spools live (default: $VEILLE_DATA or ./data).
VEILLE_DATA = None
# Sources file (default: $VEILLE_SOURCES or config/sources.yaml).
VEILLE_SOURCES = None
# Maximum article pages per source and crawl (0 = no limit).
VEILLE_LIMIT = 0
# Site-level boilerplate: a line is learned as boilerplate after this many articles of an outlet.
VEILLE_BOILERPLATE_MIN_DOCS = 5
# Near-duplicate stories: the index is rebuilt from this many days of stored articles.
VEILLE_DEDUP_WINDOW_DAYS = 14
# Topic alerts (pipelines.alerts): the topics file (default: $VEILLE_TOPICS or config/topics.yaml).
VEILLE_TOPICS = None
VEILLE_ALERTS_ENABLED = True
# Deliver alerts during the crawl (every VEILLE_ALERTS_INTERVAL seconds and at the end); when off,
# they wait in the outbox for `veille alerts deliver` / the scheduler.
VEILLE_ALERTS_DELIVER = True
VEILLE_ALERTS_INTERVAL = 60.0
# Outbox retries: exponential backoff from this base delay (seconds), given up after N attempts.
VEILLE_ALERTS_RETRY_BASE = float(os.environ.get("VEILLE_ALERTS_RETRY_BASE") or 30)
VEILLE_ALERTS_MAX_ATTEMPTS = int(os.environ.get("VEILLE_ALERTS_MAX_ATTEMPTS") or 10)
# Another outlet carrying an alerted story within this window (seconds) is an "update" alert.
VEILLE_ALERTS_UPDATE_WINDOW = 24 * 3600

# --- Search cluster (pipelines.searchindex; connection settings come from the environment:
# ELASTICSEARCH_URL or OPENSEARCH_URL, credentials, VEILLE_STORE, VEILLE_INDEX_PREFIX) ----------------
# Bulk batches: sent when this many articles wait, or the oldest has waited this long (seconds).
VEILLE_INDEX_BATCH_SIZE = int(os.environ.get("VEILLE_INDEX_BATCH_SIZE") or 200)
VEILLE_INDEX_FLUSH_SECONDS = float(os.environ.get("VEILLE_INDEX_FLUSH_SECONDS") or 5)
# After a failed batch, later batches go straight to the spool for this many seconds.
VEILLE_INDEX_RETRY_AFTER = float(os.environ.get("VEILLE_INDEX_RETRY_AFTER") or 30)
# Spool directory (default: <VEILLE_DATA>/spool); drained by `veille replay`.
VEILLE_SPOOL_DIR = os.environ.get("VEILLE_SPOOL_DIR") or None
