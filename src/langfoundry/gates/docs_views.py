"""Great Expectations' Data Docs page views, with their Jinja templates compiled once per machine.

GX gives each of its page views a Jinja environment of its own and compiles every template anew in
each (about 50 compilations per gate: half a second of a 200,000-row gate on 2 cores). These are
GX's own views, named in the Data Docs site's config (langfoundry.gates.gate._context), with
Jinja's file-system bytecode cache: compiled templates are kept in the temporary folder, keyed by
each template's source, so pages are the same bytes and a new GX version compiles afresh.

This module imports Great Expectations: GX loads it by name when it builds the site, never before.
"""

from __future__ import annotations

import functools
from typing import Any

from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView
from jinja2 import BytecodeCache, FileSystemBytecodeCache


@functools.cache
def template_cache() -> BytecodeCache | None:
    """Jinja's cache in <temporary folder>/_jinja2-cache-<user id>; none where that cannot be made."""
    try:
        return FileSystemBytecodeCache()
    except (OSError, RuntimeError):  # Jinja refuses a folder another user owns
        return None


class CachedPageView(DefaultJinjaPageView):
    """A suite's or a validation result's page."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.env.bytecode_cache = template_cache()


class CachedIndexPageView(DefaultJinjaIndexPageView):
    """The site's index page."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.env.bytecode_cache = template_cache()
