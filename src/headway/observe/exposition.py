"""The Prometheus text format (0.0.4) of a registry, rendered with a per-series cache.

prometheus_client's encoder rebuilds every line of every scrape: a Sample tuple, a label
dict, sorting and escaping the labels, for each of the thousands of lines that 100 routes'
histograms make. Here each series (one child of a labelled Counter, Gauge or Histogram,
or an unlabelled one) is rendered once by prometheus_client itself into a template (the
text before each value, byte for byte what the encoder writes); a scrape reads the
series' values straight from their cells and re-renders only the series whose values
changed since the last scrape (the others reuse their text). Any other collector
(custom collectors, Summary, Info, Enum, a registry target_info) is rendered by
prometheus_client as before, in registry order, so the output is the one
``generate_latest`` gives.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any, NamedTuple

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client import metrics as _metrics
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as _om
from prometheus_client.registry import CollectorRegistry
from prometheus_client.utils import floatToGoString

__all__ = ["TextExposition"]

Values = tuple[float, ...]
_go_string: Callable[[float], str] = floatToGoString  # the encoder's number format


class Format(NamedTuple):
    """An exposition format: its encoder, whether ``_created`` samples go to a family of
    their own (the text format), and what the encoder writes after the last family."""

    encode: Callable[[Any], bytes]
    split_created: bool
    end: str


TEXT = Format(generate_latest, True, "")
OPENMETRICS = Format(
    partial(_om.generate_latest, escaping=_om.UNDERSCORES, version="1.0.0"), False, "# EOF\n"
)


class TextExposition:
    """Renders one registry in one format; keeps its per-series cache between calls."""

    def __init__(
        self,
        registry: CollectorRegistry,
        fmt: Format = TEXT,
        cacheable: Callable[[Any], bool] | None = None,
    ) -> None:
        self.registry = registry
        self.fmt = fmt
        # which Counter, Gauge and Histogram objects may be cached (default: all); the
        # OpenMetrics format writes exemplars, which the cache does not know of
        self.cacheable = cacheable
        self._families: dict[int, _Family] = {}
        self._lock = threading.Lock()  # one scrape at a time reads and updates the cache

    def render(self) -> bytes:
        with self._lock:
            return self._render()

    def _render(self) -> bytes:
        registry: Any = self.registry
        collectors = getattr(registry, "_collector_to_names", None)
        if not isinstance(collectors, dict) or getattr(registry, "_target_info", None):
            return self.fmt.encode(registry)  # not the registry we know
        with registry._lock:
            order = list(collectors)
        parts: list[str] = []
        seen: dict[int, _Family] = {}
        for collector in order:
            family = self._family(collector)
            if family is None:
                parts.append(_encode(self.fmt, collector))
            else:
                seen[id(collector)] = family
                parts.append(family.render())
        self._families = seen
        parts.append(self.fmt.end)
        return "".join(parts).encode()

    def _family(self, collector: Any) -> _Family | None:
        family = self._families.get(id(collector))
        if family is not None and family.metric is collector:
            return family
        if type(collector) in (Counter, Gauge, Histogram) and (
            self.cacheable is None or self.cacheable(collector)
        ):
            return _Family(collector, self.fmt)
        return None


def _encode(fmt: Format, collector: Any) -> str:
    """The encoder's text of ``collector``'s families, without the end of the output."""
    text = fmt.encode(collector).decode()
    return text[: len(text) - len(fmt.end)] if fmt.end and text.endswith(fmt.end) else text


class _Family:
    """One Counter, Gauge or Histogram: its sections' headers and each series' text.

    The first series is rendered by the encoder; later ones by :func:`_prefixes` (the
    encoder's line format, its label order and escaping) when that gave the first
    series' text exactly, else by the encoder too."""

    def __init__(self, metric: Any, fmt: Format) -> None:
        self.metric = metric
        self.fmt = fmt
        self.headers: list[str] | None = None
        self.shape: Shape | None = None  # each sample's suffix and extra labels
        self.series: dict[tuple[str, ...], _Series] = {}

    def render(self) -> str:
        metric = self.metric
        if metric._labelnames:
            with metric._lock:
                children = list(metric._metrics.items())
        else:
            children = [((), metric)]
        if not children:
            return _encode(self.fmt, metric)
        known, fresh = self.series, {}
        sections: list[list[str]] | None = None
        for labels, child in children:
            series = known.get(labels)
            if series is None or series.child is not child:
                series = self._new_series(labels, child)
            if series.headers != self.headers:  # not one shape: the encoder's output
                self.series, self.headers, self.shape = {}, None, None
                return _encode(self.fmt, metric)
            fresh[labels] = series
            texts = series.texts()
            if sections is None:
                sections = [[] for _ in texts]
            for section, text in zip(sections, texts, strict=True):
                section.append(text)
        self.series = fresh
        assert sections is not None and self.headers is not None
        return "".join(
            header + "".join(section)
            for header, section in zip(self.headers, sections, strict=True)
        )

    def _new_series(self, labels: tuple[str, ...], child: Any) -> _Series:
        metric, split = self.metric, self.fmt.split_created
        if self.headers is None:  # the encoder's template; ours checked against it
            headers, prefixes = _encoded(self.fmt, metric, labels, child)
            self.headers = headers
            shape = _shape(child)
            if shape is not None and _prefixes(metric, labels, shape, split) == prefixes:
                self.shape = shape
            return _Series(child, headers, prefixes, split)
        if self.shape is not None and _shape_known(child):
            prefixes = _prefixes(metric, labels, self.shape, split)
            return _Series(child, self.headers, prefixes, split)
        return _Series(child, *_encoded(self.fmt, metric, labels, child), split)


Shape = list[tuple[str, tuple[tuple[str, str], ...]]]


class _Series:
    """One series: the text before each value (per section) and its last rendering."""

    def __init__(
        self, child: Any, headers: list[str], prefixes: list[list[str]], split: bool
    ) -> None:
        self.child = child
        self.read = _reader(child, split)
        self.headers, self.prefixes = headers, prefixes
        self.values: Values | None = None
        self.rendered: list[str] = []

    def texts(self) -> list[str]:
        values = self.read()
        if values != self.values:
            self.values = values
            numbers = iter(values)
            self.rendered = [
                "".join([f"{prefix}{_go_string(next(numbers))}\n" for prefix in prefixes])
                for prefixes in self.prefixes
            ]
        return self.rendered


def _encoded(
    fmt: Format, metric: Any, labels: tuple[str, ...], child: Any
) -> tuple[list[str], list[list[str]]]:
    """The encoder's text of one series, as headers and line prefixes."""
    sample_labels = dict(zip(metric._labelnames, labels, strict=True))
    one = Metric(metric._name, metric._documentation, metric._type, metric._unit)
    for suffix, extra, value, _, _, _ in child._samples():
        one.add_sample(metric._name + suffix, {**sample_labels, **extra}, value)
    return _template(_encode(fmt, _One(one)))


def _shape_known(child: Any) -> bool:
    """A Counter, Gauge or Histogram child whose samples are the class's own."""
    return type(child) in (Counter, Gauge, Histogram) and "_child_samples" not in vars(child)


def _shape(child: Any) -> Shape | None:
    if not _shape_known(child):
        return None
    return [(s[0], tuple(s[1].items())) for s in child._samples()]


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _prefixes(metric: Any, labels: tuple[str, ...], shape: Shape, split: bool) -> list[list[str]]:
    """The encoder's text before each value: labels sorted by name, values escaped,
    ``_created`` samples in a section of their own when ``split``."""
    name = metric._name
    own = list(zip(metric._labelnames, map(_escape, labels), strict=True))
    main: list[str] = []
    created: list[str] = []
    for suffix, extra in shape:
        items = sorted(dict(own + [(k, _escape(v)) for k, v in extra]).items())
        joined = ",".join([f'{k}="{v}"' for k, v in items])
        text = f"{name}{suffix}{{{joined}}} " if items else f"{name}{suffix} "
        (created if split and suffix == "_created" else main).append(text)
    return [main, created] if created else [main]


class _One:
    def __init__(self, metric: Metric) -> None:
        self.metric = metric

    def collect(self) -> Iterator[Metric]:
        yield self.metric


def _template(text: str) -> tuple[list[str], list[list[str]]]:
    """The encoder's output of one series, split into sections (a header, then sample
    lines), each line cut before its value (the text after the last space)."""
    headers: list[str] = []
    prefixes: list[list[str]] = []
    for line in text.splitlines(keepends=True):
        if line.startswith("# HELP "):
            headers.append(line)
            prefixes.append([])
        elif line.startswith("#"):
            headers[-1] += line
        else:
            prefixes[-1].append(line[: line.rindex(" ") + 1])
    return headers, prefixes


def _reader(child: Any, split: bool) -> Callable[[], Values]:
    """The series' values in the encoder's line order: the samples' order (the class's
    own end with ``_created``), ``_created`` last when ``split``."""
    if "_child_samples" not in vars(child):  # no set_function: the known cells
        kind = type(child)
        created = (child._created,) if _metrics._use_created and kind is not Gauge else ()
        if kind is Counter:
            cell = child._value
            return lambda: (cell.get(), *created)
        if kind is Gauge:
            cell = child._value
            return lambda: (cell.get(),)
        if kind is Histogram:
            return _histogram_reader(child, created)
    if not split:
        return lambda: tuple(s.value for s in child._child_samples())
    return lambda: _ordered(child._child_samples())


def _histogram_reader(child: Any, created: Values) -> Callable[[], Values]:
    buckets, total = child._buckets, child._sum
    with_sum = child._upper_bounds[0] >= 0

    def read() -> Values:
        values: list[float] = []
        acc = 0.0
        for bucket in buckets:
            acc += bucket.get()
            values.append(acc)
        values.append(acc)
        if with_sum:
            values.append(total.get())
        return (*values, *created)

    return read


def _ordered(samples: Sequence[Any]) -> Values:
    main = [s.value for s in samples if not s.name.endswith("_created")]
    return (*main, *(s.value for s in samples if s.name.endswith("_created")))


def format_of(encoder: Callable[..., bytes]) -> Format | None:
    """The cached format of the encoder prometheus_client chose: its plain text 0.0.4
    one, or OpenMetrics 1.0.0 with the default escaping; else None."""
    if encoder is generate_latest:
        return TEXT
    if (
        isinstance(encoder, partial)
        and encoder.func is _om.generate_latest
        and not encoder.args
        and encoder.keywords == OPENMETRICS.encode.keywords  # type: ignore[attr-defined]
    ):
        return OPENMETRICS
    return None
