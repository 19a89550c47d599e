"""Configuration loading: YAML files into typed pydantic models, with errors naming file, line and field.

`load_yaml(path, Model)` is the one way config files are read. The YAML is composed
node by node so every value keeps its line; a pydantic validation error is mapped
back to the line of the offending node.
"""
from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

M = TypeVar("M", bound=BaseModel)

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


class ConfigError(Exception):
    """A config file that cannot be used; the message names file, line and field."""

    def __init__(self, path: Path | str, line: int | None, field: str | None, message: str):
        self.path, self.line, self.field = str(path), line, field
        where = f"{self.path}:{line}" if line else self.path
        what = f" [{field}]" if field else ""
        super().__init__(f"{where}{what}: {message}")


def _to_python(node: yaml.Node, path: tuple, lines: dict[tuple, int]) -> Any:
    """Build plain Python data from a composed YAML node, recording each path's line (1-based)."""
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.safe_load(yaml.serialize(key_node)) if not isinstance(key_node, yaml.ScalarNode) else key_node.value
            out[key] = _to_python(value_node, path + (key,), lines)
            lines[path + (key,)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(child, path + (i,), lines) for i, child in enumerate(node.value)]
    # Scalars: let the safe constructor resolve ints, bools, nulls, floats.
    return yaml.SafeLoader(yaml.serialize(node)).get_single_data() if node.tag != "tag:yaml.org,2002:str" else node.value


def parse_yaml(text: str, path: Path | str = "<string>") -> tuple[Any, dict[tuple, int]]:
    """Parse YAML text into data plus a {path-tuple: line} map; syntax errors become ConfigError."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise ConfigError(path, line, None, f"invalid YAML: {getattr(exc, 'problem', exc)}") from exc
    lines: dict[tuple, int] = {}
    data = _to_python(node, (), lines) if node is not None else {}
    return data, lines


def _line_for(loc: tuple, lines: dict[tuple, int]) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def validate(data: Any, lines: dict[tuple, int], model: type[M], path: Path | str) -> M:
    """Validate parsed data against a model; the first error becomes a ConfigError at its line."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        field = ".".join(str(p) for p in loc) or None
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field (typo?)"
        more = len(exc.errors()) - 1
        if more:
            msg += f" (and {more} more error{'s' if more > 1 else ''})"
        raise ConfigError(path, _line_for(loc, lines), field, msg) from None


def load_yaml(path: Path | str, model: type[M]) -> M:
    """Read a YAML config file into `model`, raising ConfigError with file, line and field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, None, None, f"cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(path, None, None, f"not UTF-8: {exc}") from exc
    data, lines = parse_yaml(text, path)
    return validate(data, lines, model, path)


# --- sources.yaml -----------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(value: Any) -> timedelta:
    """'90s', '15m', '6h', '1d' or a number of seconds -> timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return timedelta(seconds=value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"not a duration: {value!r} (use e.g. 90s, 15m, 6h, 1d)")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def _check_regexes(values: list[str]) -> list[str]:
    for value in values:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"bad regular expression {value!r}: {exc}") from None
    return values


def _check_urls(values: list[str]) -> list[str]:
    for value in values:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"not an http(s) URL: {value!r}")
    return values


class Source(BaseModel):
    """One outlet: where to discover its articles and how often."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9_-]+$")
    name: str
    enabled: bool = True
    language: str = "fr"
    feeds: list[str] = []
    sitemaps: list[str] = []
    sections: list[str] = []
    allow: list[str] = []
    deny: list[str] = []
    interval: Duration = timedelta(minutes=30)
    cron: str | None = None
    timeout: Duration = timedelta(minutes=20)
    junk_patterns: list[str] = []
    # Scheduling (`veille schedule`): adaptive polling moves the interval within
    # [min_interval, max_interval] (default interval/4 .. interval*4); jitter is a random
    # delay added to each run (default 10% of the interval, at most 2m).
    adaptive: bool = True
    min_interval: Duration | None = None
    max_interval: Duration | None = None
    jitter: Duration | None = None
    # Known articles are fetched again (conditional GET) this long after first seen; [] = never.
    recrawl: list[Duration] = [timedelta(hours=1), timedelta(hours=6), timedelta(hours=24)]

    @field_validator("cron")
    @classmethod
    def _check_cron(cls, value: str | None) -> str | None:
        if value is not None:
            from apscheduler.triggers.cron import CronTrigger

            try:
                CronTrigger.from_crontab(value)
            except ValueError as exc:
                raise ValueError(f"bad cron expression {value!r}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _check_bounds(self) -> "Source":
        if self.min_interval is not None and self.min_interval > self.interval:
            raise ValueError("min_interval is longer than interval")
        if self.max_interval is not None and self.max_interval < self.interval:
            raise ValueError("max_interval is shorter than interval")
        if self.interval.total_seconds() <= 0:
            raise ValueError("interval must be positive")
        return self

    _urls = field_validator("feeds", "sitemaps", "sections")(_check_urls)
    _regexes = field_validator("allow", "deny", "junk_patterns")(_check_regexes)

    @model_validator(mode="after")
    def _has_discovery(self) -> "Source":
        if not (self.feeds or self.sitemaps or self.sections):
            raise ValueError("a source needs at least one of feeds, sitemaps, sections")
        return self


class SourcesFile(BaseModel):
    """The whole config/sources.yaml."""

    model_config = ConfigDict(extra="forbid")

    sources: list[Source]

    @model_validator(mode="after")
    def _unique_ids(self) -> "SourcesFile":
        seen: set[str] = set()
        for source in self.sources:
            if source.id in seen:
                raise ValueError(f"duplicate source id {source.id!r}")
            seen.add(source.id)
        return self

    def get(self, source_id: str) -> Source:
        for source in self.sources:
            if source.id == source_id:
                return source
        known = ", ".join(s.id for s in self.sources)
        raise KeyError(f"unknown source {source_id!r} (known: {known})")


def sources_path() -> Path:
    """The sources file in use: VEILLE_SOURCES or config/sources.yaml."""
    return Path(os.environ.get("VEILLE_SOURCES", CONFIG_DIR / "sources.yaml"))


def load_sources(path: Path | str | None = None) -> SourcesFile:
    return load_yaml(path or sources_path(), SourcesFile)


def data_dir() -> Path:
    """Where the store, raw pages and spools live: VEILLE_DATA or ./data."""
    path = Path(os.environ.get("VEILLE_DATA", "data"))
    path.mkdir(parents=True, exist_ok=True)
    return path
