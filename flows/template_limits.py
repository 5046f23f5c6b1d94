"""Size and time limits for the template sandbox, so one prompt cannot take the engine down.

jinja2's sandbox keeps templates away from Python internals, but not from memory or time:
``{{ 'a' * 4000000000 }}`` allocates 4 GB (at compile time, even: jinja2 folds constants),
and two nested ``range(100000)`` loops run for hours. :class:`LimitedSandbox` checks every
place a template can build something big before it is built (``*``, ``**``, ``%``, ``+``,
``~``, ``str.format``, method calls, filters, the text an expression prints) and checks a
time budget at every call, operator, filter and loop step. A template that passes a limit
raises :class:`~flows.errors.TemplateLimitError`; the session turns that into a polite end of
the call, and validation reports it when sample data already shows it.
"""

from __future__ import annotations

import contextlib
import re
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from functools import wraps
from typing import Any

from jinja2 import nodes, pass_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from flows.errors import TemplateLimitError

MAX_PROMPT_CHARS = 10_000
"""The longest text one template may render: about ten minutes of speech."""
MAX_VALUE_CHARS = 100_000
"""The largest value (as text) a template may build on the way to its output."""
MAX_INT_BITS = 4_096
"""The largest integer a template may compute (Python refuses to print >4,300 digits)."""
TIME_BUDGET_S = 0.25
"""How long one render or expression may take; the call's event loop waits meanwhile."""

# str methods a template may call: none of them grows text beyond what is checked below.
_STR_METHODS = frozenset(
    (
        *("capitalize", "casefold", "center", "count", "endswith", "find", "format", "format_map"),
        *("index", "isalnum", "isalpha", "isdecimal", "isdigit", "islower", "isnumeric", "isspace"),
        *("istitle", "isupper", "join", "ljust", "lower", "lstrip", "partition", "removeprefix"),
        *("removesuffix", "replace", "rfind", "rindex", "rjust", "rpartition", "rsplit", "rstrip"),
        *("split", "splitlines", "startswith", "strip", "swapcase", "title", "upper", "zfill"),
    )
)
_PERCENT_FIELD = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_NUMBER = re.compile(r"\d+")
_NESTED_FORMAT = re.compile(r"\{[^{}]*:[^{}]*\{")
_deadline: ContextVar[float | None] = ContextVar("template_deadline", default=None)


@contextlib.contextmanager
def budget(seconds: float = TIME_BUDGET_S) -> Iterator[None]:
    """Run the block under a time budget (nested budgets keep the outer deadline)."""
    outer = _deadline.get()
    token = _deadline.set(time.perf_counter() + seconds if outer is None else outer)
    try:
        yield
    finally:
        _deadline.reset(token)


def tick() -> None:
    """Raise once the current budget is spent (no budget: nothing to check)."""
    deadline = _deadline.get()
    if deadline is not None and time.perf_counter() > deadline:
        raise TemplateLimitError(f"template took longer than {TIME_BUDGET_S:g} s")


def text_size(value: Any, cap: int = MAX_VALUE_CHARS) -> int:
    """About ``len(str(value))``, counted without building it; stops soon after passing ``cap``."""
    total = 0
    stack = [value]
    while stack and total <= cap:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item) + 2
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() * 3 // 10 + 2
        elif isinstance(item, list | tuple | set | frozenset | dict):
            total += 2 + 2 * len(item)
            if total <= cap:
                stack.extend(item.items() if isinstance(item, dict) else item)
        else:
            total += 32  # numbers, dates, functions, undefined values: short when printed
    return total


def check_size(value: Any, what: str, cap: int = MAX_VALUE_CHARS) -> Any:
    """``value`` unchanged, or :class:`TemplateLimitError` when its text passes ``cap``."""
    if (len(value) if isinstance(value, str) else text_size(value, cap)) > cap:
        raise TemplateLimitError(f"{what} would be longer than {cap:,} characters as text")
    return value


def join_bounded(chunks: Iterable[str], cap: int = MAX_PROMPT_CHARS) -> str:
    """A template's output pieces joined, stopping as soon as they pass ``cap``."""
    out: list[str] = []
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > cap:
            raise TemplateLimitError(f"template output is longer than {cap:,} characters")
        out.append(chunk)
    return "".join(out)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _size(value: Any) -> int:
    return len(value) if isinstance(value, str) else text_size(value)


def _check_numbers(args: Iterable[Any], what: str) -> None:
    for arg in args:
        if _is_int(arg) and abs(arg) > MAX_VALUE_CHARS:
            raise TemplateLimitError(
                f"{what}: argument {_digits(arg)} is too large (at most {MAX_VALUE_CHARS:,})"
            )


def _digits(number: int) -> str:
    return str(number) if number.bit_length() < 64 else f"of {number.bit_length()} bits"


def _check_binop(operator: str, left: Any, right: Any) -> None:
    if operator == "*" and _is_int(left) and _is_int(right):
        bits = left.bit_length() + right.bit_length()
    elif operator == "**" and _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1:
        bits = min(right, MAX_INT_BITS + 1) * left.bit_length()
    elif operator == "*":
        seq, count = (left, right) if _is_int(right) else (right, left)
        if _is_int(count) and isinstance(seq, str | list | tuple) and count > 0:
            _check_total(_size(seq) * min(count, MAX_VALUE_CHARS + 1), "'*'")
        return
    elif operator == "%" and isinstance(left, str):
        _check_percent(left, right)
        return
    elif operator == "+" and isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
        _check_total(_size(left) + _size(right), "'+'")
        return
    else:
        return
    if bits > MAX_INT_BITS:
        raise TemplateLimitError(f"'{operator}' would give a number of more than {MAX_INT_BITS:,} bits")


def _check_total(size: int, what: str) -> None:
    if size > MAX_VALUE_CHARS:
        raise TemplateLimitError(f"{what} would build more than {MAX_VALUE_CHARS:,} characters")


def _check_percent(fmt: str, args: Any) -> None:
    """``'%0999999999d' % 1`` or ``'%*d' % (10**9, 1)``: widths are checked before formatting."""
    for field in _PERCENT_FIELD.finditer(fmt):
        for width in field.groups():
            if width == "*":
                _check_numbers(args if isinstance(args, tuple) else (args,), "'%' width")
            elif width is not None:
                _check_width(width, "'%'")
    values = args.values() if isinstance(args, Mapping) else args if isinstance(args, tuple) else (args,)
    _check_fields(fmt, fmt.count("%"), values, "'%'")


def _check_fields(fmt: str, fields: int, values: Iterable[Any], what: str) -> None:
    """Each field of ``fmt`` may print the largest value: ``'{0}' * 25000`` with a long text."""
    largest = max((_size(value) for value in values), default=0)
    _check_total(len(fmt) + fields * largest, what)


def _check_width(number: str, what: str) -> None:
    if len(number) > 6 or int(number) > MAX_VALUE_CHARS:
        raise TemplateLimitError(f"{what} width {number[:20]} is too large (at most {MAX_VALUE_CHARS:,})")


def _check_format_spec(fmt: str) -> None:
    if _NESTED_FORMAT.search(fmt):
        raise TemplateLimitError("str.format: nested fields in a format spec are not allowed")
    for number in _NUMBER.findall(fmt):
        _check_width(number, "str.format")


def _check_str_method(text: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Methods whose result can be much longer than their inputs."""
    if name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        count = text.count(args[0]) if args[0] else len(text) + 1
        if len(args) > 2 and _is_int(args[2]) and args[2] >= 0:
            count = min(count, args[2])
        if len(text) + count * max(0, len(args[1]) - len(args[0])) > MAX_VALUE_CHARS:
            raise TemplateLimitError(f"str.replace would build more than {MAX_VALUE_CHARS:,} characters")
    elif name == "join" and args and isinstance(args[0], str | list | tuple):
        _check_total(_size(args[0]) + len(text) * len(args[0]), "str.join")
    elif name in ("format", "format_map"):
        _check_format_spec(text)
        mapping = args[0] if name == "format_map" and args and isinstance(args[0], Mapping) else {}
        _check_fields(text, text.count("{"), (*args, *kwargs.values(), *mapping.values()), f"str.{name}")


def _limited_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a jinja2 filter: arguments, the value going in and what comes out are checked."""
    skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0

    @wraps(func)
    def limited(*args: Any, **kwargs: Any) -> Any:
        tick()
        value, extra = (args[skip], args[skip + 1 :]) if len(args) > skip else (None, ())
        if name == "join" and isinstance(value, Iterable) and not isinstance(value, str | list | tuple):
            value = list(value)  # measured below, then joined: a generator is read once
            args = (*args[:skip], value, *extra)
        _check_numbers((*extra, *kwargs.values()), f"filter {name}")
        check_size(value, f"the value given to filter {name}")
        if name == "indent" and isinstance(value, str):
            width = extra[0] if extra else kwargs.get("width", 4)
            pad = len(width) if isinstance(width, str) else width if _is_int(width) else 4
            _check_total(len(value) + (value.count("\n") + 1) * pad, "filter indent")
        elif name == "replace" and isinstance(value, str):
            _check_str_method(value, "replace", tuple(extra), kwargs)
        elif name == "join":
            separator = extra[0] if extra else kwargs.get("d", "")
            count = len(value) if isinstance(value, str | list | tuple) else 0
            _check_total(_size(value) + _size(separator) * count, "filter join")
        elif name == "format" and isinstance(value, str):
            _check_percent(value, extra or tuple(kwargs.values()))
        elif name == "wordwrap" and isinstance(value, str):
            wrap = kwargs.get("wrapstring") or (extra[2] if len(extra) > 2 else "\n")
            width = extra[0] if extra and _is_int(extra[0]) else kwargs.get("width", 79)
            lines = len(value) // max(1, width if _is_int(width) else 79) + value.count("\n") + 1
            _check_total(len(value) + lines * _size(wrap), "filter wordwrap")
        return check_size(func(*args, **kwargs), f"filter {name}")

    return limited


@pass_context
def _loop_budget(_context: Context, iterable: Any) -> Iterator[Any]:
    """Every ``{% for %}`` iterates through this, so a long loop runs into the time budget."""
    for index, item in enumerate(iterable):
        if not index & 63:
            tick()
        yield item


class _LimitedCodeGenerator(CodeGenerator):
    """``a ~ b`` goes through :meth:`LimitedSandbox.concat_limited` instead of a plain join."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.concat_limited((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class LimitedSandbox(ImmutableSandboxedEnvironment):
    """jinja2's immutable sandbox plus the size and time checks of this module."""

    code_generator_class = _LimitedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=self._finalize_output, **options)
        self.globals.pop("lipsum", None)  # lorem ipsum of any length: nothing a prompt needs
        self.filters["_loop_budget"] = _loop_budget

    def limit_filters(self) -> None:
        """Wrap every filter registered so far (call once the project's filters are added)."""
        for name, func in list(self.filters.items()):
            if name != "_loop_budget":
                self.filters[name] = _limited_filter(name, func)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, "_loop_budget", [], [], None, None, lineno=loop.lineno)
        return tree

    @staticmethod
    def _finalize_output(value: Any) -> Any:
        return check_size(value, "a printed value")

    @staticmethod
    def concat(parts: Iterable[str]) -> str:
        """What ``{% set %}`` blocks, macros and ``{% filter %}`` blocks collected, joined if small."""
        pieces = list(parts)
        _check_total(sum(len(piece) for piece in pieces), "a block's output")
        return "".join(pieces)

    def concat_limited(self, parts: tuple[Any, ...]) -> str:
        tick()
        _check_total(sum(_size(part) for part in parts), "'~'")
        return "".join(map(str, parts))

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str) and attr not in _STR_METHODS:
            return False
        return bool(super().is_safe_attribute(obj, attr, value))

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        tick()
        _check_binop(operator, left, right)
        return self.binop_table[operator](left, right)

    def getattr(self, obj: Any, attribute: str) -> Any:
        tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        tick()
        return super().getitem(obj, argument)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        tick()
        owner = getattr(obj, "__self__", None)
        builtin = isinstance(obj, types.BuiltinMethodType | types.MethodWrapperType)
        if builtin and isinstance(owner, str | bytes | int):  # 'a'.center(10**9), (1).to_bytes(10**9)
            _check_numbers((*args, *kwargs.values()), f"{type(owner).__name__}.{obj.__name__}")
            if isinstance(owner, str):
                _check_str_method(owner, obj.__name__, args, kwargs)
        return check_size(super().call(context, obj, *args, **kwargs), "a call's result")

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        owner: str = value.__self__
        name: str = value.__name__

        def limited(*args: Any, **kwargs: Any) -> str:
            tick()
            _check_str_method(owner, name, args, kwargs)
            return str(check_size(wrapper(*args, **kwargs), f"str.{name}"))

        return limited
