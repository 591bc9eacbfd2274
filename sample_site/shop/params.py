"""Query parameters: every one parsed and bounded, a bad one answered with 400.

A view declares its integer parameters with `@query_ints(name=(default, low, high))`
and receives them as keyword arguments; a value that is missing gets the default, a
value that is not a plain decimal number or lies outside low..high gets a one-line
`text/plain` 400 and the view is not called.
"""

import functools
import inspect
import re

from django.http import HttpResponse

DIGITS = re.compile(r"[0-9]{1,12}")  # no sign, spaces, "_" or non-ASCII digits, which int() would accept


class BadParameter(ValueError):
    pass


def bounded_int(query, name, default, low, high):
    raw = query.get(name)
    if raw is None:
        return default
    if DIGITS.fullmatch(raw) is None or not low <= int(raw) <= high:
        shown = raw if len(raw) <= 20 else raw[:20] + "..."
        raise BadParameter(f"{name} must be a whole number from {low} to {high}, got {shown!r}")
    return int(raw)


def bad_request(error):
    return HttpResponse(f"{error}\n", status=400, content_type="text/plain; charset=utf-8")


def query_ints(**specs):
    def parse(request):
        return {name: bounded_int(request.GET, name, *spec) for name, spec in specs.items()}

    def decorate(view):
        if inspect.iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_view(request):
                try:
                    values = parse(request)
                except BadParameter as error:
                    return bad_request(error)
                return await view(request, **values)

            return async_view

        @functools.wraps(view)
        def sync_view(request):
            try:
                values = parse(request)
            except BadParameter as error:
                return bad_request(error)
            return view(request, **values)

        return sync_view

    return decorate
