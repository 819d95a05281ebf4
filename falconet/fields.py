"""Field registry types: what a rule condition or output may name, per event source.

A :class:`FieldDef` describes one field (``proc.name``, ``ct.user``, ``json.value``): its
type, whether it takes an argument, and how to build an extractor for it. Fields are
resolved once, when rules are loaded (:meth:`FieldRegistry.resolve` then
:meth:`FieldDef.bind`); the engine never looks a field up by name per event.

An extractor is a plain function ``extract(event) -> value | None``. ``None`` means the
value is missing (Falco's "cannot extract"): every comparison on it is false, ``exists``
is false, and outputs print ``<NA>`` / ``null``. Python value types per field type:

=========================================  =====================================
field type                                 value
=========================================  =====================================
CHARBUF, FSPATH                            ``str``
BYTEBUF                                    ``bytes``
INT*/UINT*/RELTIME/ABSTIME/PORT/MODE ...   ``int``
DOUBLE                                     ``float``
BOOL                                       ``bool`` (never 0/1)
IPADDR, IPNET                              ``str`` in canonical form (``ipaddress`` compressed)
=========================================  =====================================

A list field returns a non-empty ``tuple`` (an empty list is missing). A field whose
:class:`CompareMode` is ``ANY`` or ``EITHER`` returns a tuple of candidate values (the
ancestors of a process, the client and server address of a socket); see there.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from .errors import FalconetError

Extractor = Callable[[Any], Any]
"""``extract(event) -> value | None``; ``None`` means missing."""


class FieldType(enum.Enum):
    """Field types, named as in libsinsp so docs and errors read the same as Falco's."""

    CHARBUF = "CHARBUF"
    FSPATH = "FSPATH"
    BYTEBUF = "BYTEBUF"
    INT8 = "INT8"
    INT16 = "INT16"
    INT32 = "INT32"
    INT64 = "INT64"
    UINT8 = "UINT8"
    UINT16 = "UINT16"
    UINT32 = "UINT32"
    UINT64 = "UINT64"
    ERRNO = "ERRNO"
    FD = "FD"
    PID = "PID"
    PORT = "PORT"
    MODE = "MODE"
    FLAGS32 = "FLAGS32"
    RELTIME = "RELTIME"
    ABSTIME = "ABSTIME"
    DOUBLE = "DOUBLE"
    BOOL = "BOOL"
    IPADDR = "IPADDR"
    IPNET = "IPNET"

    @property
    def is_string(self) -> bool:
        return self in (FieldType.CHARBUF, FieldType.FSPATH)

    @property
    def is_numeric(self) -> bool:
        return self in _NUMERIC

    @property
    def is_ip(self) -> bool:
        return self in (FieldType.IPADDR, FieldType.IPNET)


_NUMERIC = frozenset(
    {
        FieldType.INT8,
        FieldType.INT16,
        FieldType.INT32,
        FieldType.INT64,
        FieldType.UINT8,
        FieldType.UINT16,
        FieldType.UINT32,
        FieldType.UINT64,
        FieldType.ERRNO,
        FieldType.FD,
        FieldType.PID,
        FieldType.PORT,
        FieldType.MODE,
        FieldType.FLAGS32,
        FieldType.RELTIME,
        FieldType.ABSTIME,
        FieldType.DOUBLE,
    }
)


class ArgMode(enum.Enum):
    """Whether a field takes an argument (``proc.aname[2]``, ``json.value[/a/b]``)."""

    NONE = "none"
    OPTIONAL = "optional"
    REQUIRED = "required"


class CompareMode(enum.Enum):
    """How a comparison treats the candidates an ``ANY``/``EITHER`` extractor returns.

    * ``PLAIN``: one value (or a list for list fields); the usual operator semantics.
    * ``ANY``: true if any candidate satisfies the comparison, for every operator
      (``proc.aname`` without an index: some ancestor matches; ``!=`` means some
      ancestor differs).
    * ``EITHER``: like ``ANY``, except ``!=`` needs every candidate to differ
      (``fd.ip``, ``fd.net``, ``fd.port``, ``fd.proto``: client or server side).
    """

    PLAIN = "plain"
    ANY = "any"
    EITHER = "either"


class UnknownFieldError(FalconetError):
    """A condition or output names a field the source does not have."""


class FieldArgError(FalconetError):
    """A field was given an argument it does not accept (or lacks a required one)."""


@dataclass(frozen=True, slots=True)
class BoundField:
    """A field with its argument resolved: what compiled rules call per event.

    ``render`` is the extractor used for outputs when it differs from ``extract``
    (for example a field compared through candidates but printed as one string), and
    ``text`` turns an output value into its text form when the generic rendering
    (``str``; ``true``/``false``; lists as ``(a,b)``) is not what Falco prints, e.g.
    ``evt.time`` is a number in JSON ``output_fields`` and ``HH:MM:SS.nnnnnnnnn`` in text.
    """

    name: str
    extract: Extractor
    type: FieldType
    is_list: bool = False
    compare: CompareMode = CompareMode.PLAIN
    render: Extractor | None = None
    text: Callable[[Any], str] | None = None
    no_rhs: bool = False
    ops: frozenset[str] | None = None

    @property
    def output_extract(self) -> Extractor:
        return self.render if self.render is not None else self.extract


Maker = Callable[[str | None], "Extractor | BoundField"]


@dataclass(frozen=True, slots=True)
class FieldDef:
    """One field of a source's registry.

    Attributes:
        name: the dotted name (``proc.aname``).
        type: the value type (see the module docstring for the Python types).
        desc: a one-line description, shown by ``falconet fields``.
        make: ``make(arg) -> extractor | BoundField``; called once per use at load time.
            It raises :class:`FieldArgError` (or ``ValueError``) for an argument it
            rejects, e.g. a non-numeric index.
        arg: whether an argument is accepted or required.
        index_arg: the argument is a non-negative integer (``proc.aname[2]``).
        dotted_arg: the argument may be written after a dot (``evt.arg.flags``).
        is_list: the field yields a list of values (``ka.req.pod.containers.image``).
        compare: candidate semantics (see :class:`CompareMode`); ``ANY`` applies only
            when no argument is given (``proc.aname`` vs ``proc.aname[1]``).
        no_rhs: the field cannot appear inside ``val()`` (libsinsp's EPF_NO_RHS).
        no_transformer: transformers cannot be applied to it.
        deprecated: loading a rule that uses it gives a warning.
        ops: when set, the only operators the field accepts (libsinsp restricts some
            filter-only fields, e.g. ``fd.ip`` takes ``= != in exists``).
    """

    name: str
    type: FieldType
    desc: str
    make: Maker
    arg: ArgMode = ArgMode.NONE
    index_arg: bool = False
    dotted_arg: bool = False
    is_list: bool = False
    compare: CompareMode = CompareMode.PLAIN
    no_rhs: bool = False
    no_transformer: bool = False
    deprecated: bool = False
    ops: frozenset[str] | None = None

    def bind(self, arg: str | None) -> BoundField:
        """Resolve the argument and build the extractor, or raise :class:`FieldArgError`."""
        shown = self.name if arg is None else f"{self.name}[{arg}]"
        if arg is None and self.arg is ArgMode.REQUIRED:
            raise FieldArgError(f"field '{self.name}' requires an argument")
        if arg is not None and self.arg is ArgMode.NONE:
            raise FieldArgError(f"field '{self.name}' does not take an argument")
        if arg is not None and self.index_arg:
            if not arg.isdigit():
                raise FieldArgError(f"field '{shown}': the argument must be a non-negative integer")
        try:
            made = self.make(arg)
        except (FieldArgError, UnknownFieldError):
            raise
        except ValueError as exc:
            raise FieldArgError(f"field '{shown}': {exc}") from None
        if isinstance(made, BoundField):
            if self.ops is not None and made.ops is None:
                return replace(made, ops=self.ops)
            return made
        compare = self.compare if arg is None else CompareMode.PLAIN
        if self.compare is CompareMode.EITHER:
            compare = CompareMode.EITHER
        return BoundField(
            name=shown,
            extract=made,
            type=self.type,
            is_list=self.is_list,
            compare=compare,
            no_rhs=self.no_rhs,
            ops=self.ops,
        )


class FieldRegistry:
    """The fields of one event source, looked up by name at rule-load time."""

    __slots__ = ("source", "_fields", "_dotted")

    def __init__(self, source: str, fields: Iterable[FieldDef] = ()) -> None:
        self.source = source
        self._fields: dict[str, FieldDef] = {}
        self._dotted: list[FieldDef] = []
        self.add(*fields)

    def add(self, *fields: FieldDef) -> None:
        for f in fields:
            if f.name in self._fields:
                raise ValueError(f"field {f.name!r} defined twice for source {self.source!r}")
            self._fields[f.name] = f
            if f.dotted_arg:
                self._dotted.append(f)
        # longest names first, so `evt.rawarg.x` never binds to a shorter prefix
        self._dotted.sort(key=lambda f: len(f.name), reverse=True)

    def __contains__(self, name: str) -> bool:
        return name in self._fields

    def __iter__(self) -> Iterator[FieldDef]:
        return iter(self._fields.values())

    def __len__(self) -> int:
        return len(self._fields)

    def get(self, name: str) -> FieldDef | None:
        return self._fields.get(name)

    def resolve(self, name: str, arg: str | None = None) -> tuple[FieldDef, str | None]:
        """Find the definition for ``name`` (and its argument, for dotted forms).

        ``evt.arg.flags`` resolves to (``evt.arg``, ``"flags"``). Raises
        :class:`UnknownFieldError` when no field matches.
        """
        f = self._fields.get(name)
        if f is not None:
            return f, arg
        if arg is None:
            for d in self._dotted:
                prefix = d.name + "."
                if name.startswith(prefix) and len(name) > len(prefix):
                    return d, name[len(prefix) :]
        raise UnknownFieldError(f"unknown field '{name}' for source {self.source}")

    def bind(self, name: str, arg: str | None = None) -> BoundField:
        """Resolve and bind in one step."""
        f, a = self.resolve(name, arg)
        return f.bind(a)


def field(
    name: str,
    type: FieldType,
    desc: str,
    make: Maker,
    **kwargs: Any,
) -> FieldDef:
    """Shorthand used by the per-source field modules."""
    return FieldDef(name=name, type=type, desc=desc, make=make, **kwargs)


def simple(fn: Extractor) -> Maker:
    """A maker for a field without argument: always the same extractor."""

    def make(arg: str | None) -> Extractor:
        return fn

    return make
